"""RFC 6381 codec strings read from an fMP4 init segment, for what ffmpeg 5.1 leaves bare.

ffmpeg's DASH muxer writes full strings for H.264 (``avc1.64001f``), AAC and AV1, but only
``hvc1`` for HEVC. Players choose variants by the full string, so for HEVC it is derived here from
the ``hvcC`` box (ISO/IEC 14496-15 Annex E): ``hvc1.<space><profile>.<compat>.<tier><level>.<constraints>``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

_CONTAINERS = (b"moov", b"trak", b"mdia", b"minf", b"stbl")
_SAMPLE_ENTRY_HEADER = 78  # VisualSampleEntry fields before its child boxes
_STSD_HEADER = 8  # version/flags + entry_count


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, box end) of each box in ``data[start:end]``."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        elif size == 0:
            size = end - pos
        if size < header:
            return
        yield kind, pos + header, min(pos + size, end)
        pos += size


def _find_hvcc(data: bytes) -> bytes | None:
    level = [(0, len(data))]
    for container in _CONTAINERS:
        found = [
            (s, e) for start, end in level for kind, s, e in _boxes(data, start, end) if kind == container
        ]
        if not found:
            return None
        level = found
    for start, end in level:
        for kind, s, e in _boxes(data, start, end):
            if kind != b"stsd":
                continue
            for entry, es, ee in _boxes(data, s + _STSD_HEADER, e):
                if entry in (b"hvc1", b"hev1"):
                    for child, cs, ce in _boxes(data, es + _SAMPLE_ENTRY_HEADER, ee):
                        if child == b"hvcC":
                            return data[cs:ce]
    return None


def hevc_codec_string(init_segment: bytes, sample_entry: str = "hvc1") -> str | None:
    """The full HEVC codec string of an init segment, or None when it holds no ``hvcC``."""
    hvcc = _find_hvcc(init_segment)
    if hvcc is None or len(hvcc) < 13:
        return None
    profile_space = hvcc[1] >> 6
    tier = "H" if hvcc[1] & 0x20 else "L"
    profile = hvcc[1] & 0x1F
    compat = int.from_bytes(hvcc[2:6], "big")
    reversed_compat = int(f"{compat:032b}"[::-1], 2)
    constraints = list(hvcc[6:12])
    while constraints and constraints[-1] == 0:
        constraints.pop()
    space = "" if profile_space == 0 else "ABC"[profile_space - 1]
    parts = [sample_entry, f"{space}{profile}", f"{reversed_compat:X}", f"{tier}{hvcc[12]}"]
    parts += [f"{byte:X}" for byte in constraints]
    return ".".join(parts)
