"""A thumbnails storyboard checked as a player reads it: the WebVTT parsed with ``webvtt-py``, each
cue's ``sheet#xywh=x,y,w,h`` resolved against the sheets' real pixel sizes.

``check_storyboard`` returns what is wrong (an empty list when nothing is): cues must tile
``[0, duration]`` exactly (first at 0, each starting where the last ended, the last ending at the
duration, all to the millisecond), name a known sheet, and cut a rectangle of the tile size that
lies inside that sheet; no two cues may share a cell.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import webvtt

_XYWH = re.compile(r"^(?P<sheet>[^#\s]+)#xywh=(\d+),(\d+),(\d+),(\d+)$")


@dataclass(frozen=True)
class TileCue:
    start: float
    end: float
    sheet: str
    x: int
    y: int
    w: int
    h: int


def _seconds(clock: str) -> float:
    """``HH:MM:SS.mmm`` as webvtt-py gives it (its ``start_in_seconds`` drops the milliseconds)."""
    hours, minutes, secs = clock.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(secs)


def parse_storyboard_vtt(text: str) -> list[TileCue]:
    cues = []
    for caption in webvtt.from_buffer(io.StringIO(text)).captions:
        match = _XYWH.match(caption.text.strip())
        if match is None:
            raise AssertionError(f"cue text is not sheet#xywh=x,y,w,h: {caption.text!r}")
        x, y, w, h = (int(v) for v in match.groups()[1:])
        start, end = _seconds(caption.start), _seconds(caption.end)
        cues.append(TileCue(start, end, match["sheet"], x, y, w, h))
    return cues


def _millis(seconds: float) -> int:
    return round(seconds * 1000)


def check_storyboard(
    cues: list[TileCue], *, duration: float, sheets: dict[str, tuple[int, int]], tile: tuple[int, int]
) -> list[str]:
    """Problems of ``cues`` over ``duration`` given each sheet's (width, height) and the tile size."""
    problems = []
    if not cues:
        return ["no cues"]
    if _millis(cues[0].start) != 0:
        problems.append(f"the first cue starts at {cues[0].start}, not 0")
    if _millis(cues[-1].end) != _millis(duration):
        problems.append(f"the last cue ends at {cues[-1].end}, not at the duration {duration}")
    cells = set()
    for i, cue in enumerate(cues):
        if i and _millis(cue.start) != _millis(cues[i - 1].end):
            problems.append(f"cue {i} starts at {cue.start}, the previous ended at {cues[i - 1].end}")
        if _millis(cue.end) <= _millis(cue.start):
            problems.append(f"cue {i} is empty or backwards ({cue.start} → {cue.end})")
        if cue.sheet not in sheets:
            problems.append(f"cue {i} names an unknown sheet {cue.sheet}")
            continue
        width, height = sheets[cue.sheet]
        if (cue.w, cue.h) != tile:
            problems.append(f"cue {i} cuts {cue.w}x{cue.h}, not the tile size {tile[0]}x{tile[1]}")
        if not (0 <= cue.x and cue.x + cue.w <= width and 0 <= cue.y and cue.y + cue.h <= height):
            problems.append(
                f"cue {i}'s rectangle {cue.x},{cue.y},{cue.w},{cue.h} is outside {width}x{height}"
            )
        if (cue.sheet, cue.x, cue.y) in cells:
            problems.append(f"cue {i} reuses the cell {cue.x},{cue.y} of {cue.sheet}")
        cells.add((cue.sheet, cue.x, cue.y))
    return problems
