"""Validation of ``subtitles``, ``chapters`` and ``thumbnails`` options (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from taskkit.option_fields import Echo, ValueParser, choice, integer, language, parse_fields, seconds

SUBTITLE_FORMATS: Final = ("vtt", "srt")
CHAPTER_FORMATS: Final = ("vtt", "srt", "json")
LINE_LENGTH_RANGE: Final = (20, 80)
LINES_RANGE: Final = (1, 3)
MIN_LENGTH_RANGE: Final = (1.0, 3600.0)

_SUBTITLE_PARSERS: Final[dict[str, ValueParser]] = {
    "format": choice(SUBTITLE_FORMATS),
    "language": language,
    "max_line_length": integer(*LINE_LENGTH_RANGE, " number of characters"),
    "max_lines": integer(*LINES_RANGE),
}
_CHAPTER_PARSERS: Final[dict[str, ValueParser]] = {
    "format": choice(CHAPTER_FORMATS),
    "min_length": seconds(*MIN_LENGTH_RANGE),
}


@dataclass(frozen=True)
class SubtitlesOptions(Echo):
    format: str = "vtt"
    language: str | None = None
    max_line_length: int = 42  # Netflix timed-text style guide
    max_lines: int = 2


@dataclass(frozen=True)
class ChaptersOptions(Echo):
    format: str = "vtt"
    min_length: float = 10.0  # YouTube's shortest chapter


def parse_subtitles_options(raw: Mapping[str, Any]) -> SubtitlesOptions:
    return SubtitlesOptions(**parse_fields("subtitles", raw, _SUBTITLE_PARSERS))


def parse_chapters_options(raw: Mapping[str, Any]) -> ChaptersOptions:
    return ChaptersOptions(**parse_fields("chapters", raw, _CHAPTER_PARSERS))
