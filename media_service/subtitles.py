"""Subtitle files for a package (pure): SRT or WebVTT in, a cue list, WebVTT out.

A subtitles track of ``adaptive_video`` is fetched from a user's URL, so it is parsed rather than
passed through: only cue timings and text survive (no STYLE/REGION blocks, no markup beyond what
the text carries), the cues are shifted by the package's ``start`` and cut to its window, and the
file is written back as plain WebVTT, the one format both HLS and DASH players take.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from taskkit.errors import InputError
from taskkit.media import cue_time

MAX_BYTES: Final = 2_000_000
_TIME: Final = r"(?:(\d+):)?(\d{1,2}):(\d{2})[.,](\d{3})"
_TIMING: Final = re.compile(rf"^\s*{_TIME}\s*-->\s*{_TIME}(.*)$")


@dataclass(frozen=True)
class Cue:
    start: float  # seconds
    end: float
    text: str


def _seconds(hours: str | None, minutes: str, secs: str, millis: str) -> float:
    return int(hours or 0) * 3600 + int(minutes) * 60 + int(secs) + int(millis) / 1000


def parse_cues(data: bytes, *, what: str) -> list[Cue]:
    """The cues of an SRT or WebVTT file; ``what`` names the file in errors."""
    if len(data) > MAX_BYTES:
        raise InputError(f"{what} is larger than the limit of {MAX_BYTES} bytes")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{what} is not UTF-8 text") from None
    cues: list[Cue] = []
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n").replace("\r", "\n")):
        lines = block.strip("\n").split("\n")
        for i, line in enumerate(lines):
            match = _TIMING.match(line)
            if match is None:
                continue
            groups = match.groups()
            start, end = _seconds(*groups[0:4]), _seconds(*groups[4:8])
            body = "\n".join(part for part in lines[i + 1 :] if part.strip())
            if end > start and body:
                cues.append(Cue(start, end, body.replace("-->", "->")))
            break
    if not cues:
        raise InputError(f"{what} has no cues: it is not an SRT or WebVTT subtitles file")
    return sorted(cues, key=lambda cue: cue.start)


def clip_cues(cues: list[Cue], start: float, length: float | None) -> list[Cue]:
    """The cues of the window ``[start, start + length)``, retimed so the window starts at 0."""
    end = None if length is None else start + length
    kept = []
    for cue in cues:
        if cue.end <= start or (end is not None and cue.start >= end):
            continue
        cue_end = cue.end if end is None else min(cue.end, end)
        kept.append(Cue(max(cue.start - start, 0.0), cue_end - start, cue.text))
    return kept


def webvtt(cues: list[Cue]) -> str:
    """A WebVTT file of ``cues`` (an empty cue list is a valid file with no cues)."""
    blocks = ["WEBVTT"]
    blocks += [f"{cue_time(cue.start)} --> {cue_time(cue.end)}\n{cue.text}" for cue in cues]
    return "\n\n".join(blocks) + "\n"
