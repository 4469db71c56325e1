"""HLS playlist checks: what RFC 8216 and Apple's HLS authoring rules ask of a VOD package.

Parsers here are deliberately small and strict — a test that reads a playlist should fail on a
missing tag rather than guess — and they return plain data (variants, media renditions, segments)
so a test can go on to fetch what the playlist names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ATTR = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)')


@dataclass(frozen=True)
class Variant:
    """One ``#EXT-X-STREAM-INF`` entry: its attributes and the media playlist URI that follows."""

    uri: str
    attrs: dict[str, str]


@dataclass(frozen=True)
class MediaPlaylist:
    """The parts of a VOD media playlist a test checks: version, target, init segment, segments."""

    version: int
    target: int
    map_uri: str
    segments: list[tuple[str, float]]


def parse_attrs(text: str) -> dict[str, str]:
    """An attribute list (RFC 8216 §4.2) as a dict; quoted values keep their commas, lose quotes."""
    attrs = {}
    for name, value in _ATTR.findall(text):
        assert name not in attrs, f"attribute {name} repeated in {text!r}"
        attrs[name] = value[1:-1] if value.startswith('"') else value
    return attrs


def _lines(text: str) -> list[str]:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    assert lines and lines[0] == "#EXTM3U", "a playlist starts with #EXTM3U"
    return lines


def _tag(lines: list[str], name: str) -> str | None:
    values = [line.split(":", 1)[1] if ":" in line else "" for line in lines if line.split(":", 1)[0] == name]
    assert len(values) <= 1, f"{name} appears {len(values)} times"
    return values[0] if values else None


def _version(lines: list[str]) -> int:
    version = _tag(lines, "#EXT-X-VERSION")
    assert version is not None and int(version) >= 6, f"EXT-X-VERSION {version} (fMP4 needs 6 or more)"
    return int(version)


def check_master(text: str) -> tuple[list[Variant], list[dict[str, str]]]:
    """Check a master playlist and return its variants and its ``#EXT-X-MEDIA`` renditions."""
    lines = _lines(text)
    _version(lines)
    assert _tag(lines, "#EXT-X-INDEPENDENT-SEGMENTS") is not None, "EXT-X-INDEPENDENT-SEGMENTS is missing"
    media = [parse_attrs(line.split(":", 1)[1]) for line in lines if line.startswith("#EXT-X-MEDIA:")]
    for rendition in media:
        for name in ("TYPE", "GROUP-ID", "NAME"):
            assert name in rendition, f"EXT-X-MEDIA without {name}: {rendition}"
    groups = {(m["TYPE"], m["GROUP-ID"]) for m in media}
    variants = []
    for i, line in enumerate(lines):
        if not line.startswith("#EXT-X-STREAM-INF:"):
            continue
        attrs = parse_attrs(line.split(":", 1)[1])
        assert i + 1 < len(lines) and not lines[i + 1].startswith("#"), "a URI line follows EXT-X-STREAM-INF"
        bandwidth = int(attrs["BANDWIDTH"])
        assert 0 < int(attrs["AVERAGE-BANDWIDTH"]) <= bandwidth, attrs
        assert attrs.get("CODECS"), f"a variant without CODECS: {attrs}"
        if any(
            codec.split(".")[0] in {"avc1", "hvc1", "hev1", "av01"} for codec in attrs["CODECS"].split(",")
        ):
            assert re.fullmatch(r"\d+x\d+", attrs.get("RESOLUTION", "")), f"video without RESOLUTION: {attrs}"
            assert re.fullmatch(r"\d+\.\d{3}", attrs.get("FRAME-RATE", "")), (
                f"video without FRAME-RATE: {attrs}"
            )
        for kind in ("AUDIO", "SUBTITLES"):
            if kind in attrs:
                assert (kind, attrs[kind]) in groups, f"{kind} group {attrs[kind]!r} is not declared"
        variants.append(Variant(lines[i + 1], attrs))
    assert variants, "a master playlist without variants"
    return variants, media


def check_media(text: str, *, duration: float | None = None, frame: float = 0.05) -> MediaPlaylist:
    """Check a VOD fMP4 media playlist; with ``duration``, its segments must add up to it ± ``frame``."""
    lines = _lines(text)
    version = _version(lines)
    assert _tag(lines, "#EXT-X-PLAYLIST-TYPE") == "VOD", "EXT-X-PLAYLIST-TYPE:VOD is missing"
    assert lines[-1] == "#EXT-X-ENDLIST", "a VOD playlist ends with EXT-X-ENDLIST"
    target_text = _tag(lines, "#EXT-X-TARGETDURATION")
    assert target_text is not None and target_text.isdigit(), f"EXT-X-TARGETDURATION {target_text!r}"
    target = int(target_text)
    map_attrs = _tag(lines, "#EXT-X-MAP")
    assert map_attrs is not None, "an fMP4 playlist names its init segment with EXT-X-MAP"
    map_uri = parse_attrs(map_attrs)["URI"]
    segments = []
    for i, line in enumerate(lines):
        if not line.startswith("#EXTINF:"):
            continue
        seconds = float(line.split(":", 1)[1].split(",", 1)[0])
        # RFC 8216 §4.3.3.1: each EXTINF, rounded to the nearest integer, is at most the target.
        assert round(seconds) <= target and seconds <= target + 0.5, f"EXTINF {seconds} over target {target}"
        assert i + 1 < len(lines) and not lines[i + 1].startswith("#"), "a URI line follows EXTINF"
        segments.append((lines[i + 1], seconds))
    assert segments, "a media playlist without segments"
    if duration is not None:
        total = sum(seconds for _, seconds in segments)
        assert abs(total - duration) <= frame, f"segments add up to {total:.3f}s, not {duration}s"
    return MediaPlaylist(version, target, map_uri, segments)
