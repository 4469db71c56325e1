"""Validation of ``subtitles``, ``chapters`` and ``thumbnails`` options (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from taskkit.errors import InvalidRequest
from taskkit.media import DEFAULT_QUALITY, QUALITY_LEVELS, Length
from taskkit.options import Echo, ValueParser, choice, integer, language, length, parse_fields, seconds
from tracks_service.storyboard import (
    DEFAULT_COLUMNS,
    DEFAULT_ROWS,
    MAX_FRAMES,
    SHEET_FORMATS,
)

SUBTITLE_FORMATS: Final = ("vtt", "srt")
CHAPTER_FORMATS: Final = ("vtt", "srt", "json")
LINE_LENGTH_RANGE: Final = (20, 80)
LINES_RANGE: Final = (1, 3)
MIN_LENGTH_RANGE: Final = (1.0, 3600.0)
THUMBNAIL_INTERVAL_RANGE: Final = (0.01, 3600.0)
GRID_RANGE: Final = (1, 100)

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
_THUMBNAIL_PARSERS: Final[dict[str, ValueParser]] = {
    "width": length,
    "height": length,
    "format": choice(tuple(SHEET_FORMATS), aliases={"jpg": "jpeg"}),
    "interval": seconds(*THUMBNAIL_INTERVAL_RANGE),
    "count": integer(1, MAX_FRAMES, " number of frames"),
    "columns": integer(*GRID_RANGE),
    "rows": integer(*GRID_RANGE),
    "quality": choice(QUALITY_LEVELS),
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


@dataclass(frozen=True)
class ThumbnailsOptions(Echo):
    """Sprite sheets and storyboards; neither ``interval`` nor ``count``: the whole duration in at
    most 100 frames, at least a second apart (``storyboard.plan_storyboard``)."""

    width: Length | None = None  # neither side: 160 wide, aspect kept
    height: Length | None = None
    format: str = "jpeg"
    interval: float | None = None
    count: int | None = None
    columns: int = DEFAULT_COLUMNS
    rows: int = DEFAULT_ROWS
    quality: str = DEFAULT_QUALITY  # the sheets' encoder level (png is lossless and ignores it)


def parse_thumbnails_options(raw: Mapping[str, Any]) -> ThumbnailsOptions:
    values = parse_fields("thumbnails", raw, _THUMBNAIL_PARSERS)
    if "interval" in values and "count" in values:
        raise InvalidRequest("options.interval and options.count cannot be used together; give only one.")
    return ThumbnailsOptions(**values)
