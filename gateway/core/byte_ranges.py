"""HTTP Range (RFC 9110 §14) for the file links: one byte range per request.

A single range is what players and browsers send when they seek; a request for several ranges is
answered with the whole file (200), which the RFC allows, instead of a multipart/byteranges body.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# ASCII digits only (str.isdigit takes "²"), and short enough for int() and any file size.
_NUMBER = re.compile(r"[0-9]{1,19}")


class Unsatisfiable(Exception):
    """No byte of the requested range lies within the file: 416 with ``bytes */<size>``."""


@dataclass(frozen=True)
class ByteRange:
    start: int
    length: int

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.start + self.length - 1}/{size}"


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The range to serve, or None for the whole file (no header, a header this server ignores:
    another unit, several ranges, bad syntax). Raises Unsatisfiable past the end."""
    if not header:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash or not (first or last):
        return None
    if any(part and not _NUMBER.fullmatch(part) for part in (first, last)):
        return None
    if not first:  # a suffix: the last N bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise Unsatisfiable
        return ByteRange(max(size - suffix, 0), min(suffix, size))
    start = int(first)
    if start >= size:
        raise Unsatisfiable
    end = min(int(last), size - 1) if last else size - 1
    if end < start:
        return None  # an invalid range is ignored, not refused
    return ByteRange(start, end - start + 1)
