"""WebVTT and SubRip text for cues: subtitles, and chapters whose cue text is their title.

The writers take anything with ``start``, ``end`` (seconds) and ``lines``, so chapter cues (one
line, the title) and subtitle cues share them. Times are written to the millisecond, rounded.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from taskkit.media import cue_time


class TimedText(Protocol):
    """What a writer needs of a cue (``tracks_service.cues.Cue`` is one)."""

    @property
    def start(self) -> float: ...
    @property
    def end(self) -> float: ...
    @property
    def lines(self) -> Sequence[str]: ...


def _text_lines(lines: Sequence[str]) -> list[str]:
    """The cue's lines without line breaks or blank lines inside them: both formats end a cue at
    a blank line, so a title with one would cut its cue short."""
    return [line.strip() for text in lines for line in text.splitlines() if line.strip()]


def _escape(line: str) -> str:
    """WebVTT cue text: ``&`` and ``<`` start references and tags, and ``>`` would make ``-->``."""
    return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_webvtt(cues: Iterable[TimedText]) -> str:
    blocks = [
        f"{cue_time(c.start)} --> {cue_time(c.end)}\n" + "\n".join(map(_escape, _text_lines(c.lines)))
        for c in cues
    ]
    return "WEBVTT\n\n" + "".join(block + "\n\n" for block in blocks)


def to_srt(cues: Iterable[TimedText]) -> str:
    """SubRip has no escapes (players read its ``<i>``-style tags as they find them): the text
    goes as it is."""
    blocks = [
        f"{index}\n{cue_time(c.start, ',')} --> {cue_time(c.end, ',')}\n" + "\n".join(_text_lines(c.lines))
        for index, c in enumerate(cues, 1)
    ]
    return "".join(block + "\n\n" for block in blocks)
