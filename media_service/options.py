"""Validation and normalisation of ``video``, ``image`` and ``audio`` task options (pure).

The gateway hands over ``options`` exactly as the user sent them (JSON). Every rule about option
names, types, ranges and combinations lives here, so a bad request fails at creation time with one
sentence naming the field, and the argv builders can trust what they get. Types are strict: a
number must be a JSON number (not ``"10"``, not ``true``), a boolean a JSON boolean. ``null`` means
"not given". The frozen dataclasses carry the defaults that do not depend on the input; their
``to_dict()`` is the normalised echo stored as the task's ``options``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from taskkit.errors import InputError, InvalidRequest
from taskkit.fetch import check_scheme
from taskkit.media import DEFAULT_QUALITY, POSITION_ANCHORS, QUALITY_LEVELS, Fit, Length
from taskkit.options import (
    Echo,
    boolean,
    choice,
    fail,
    got,
    integer,
    is_number,
    length,
    parse_fields,
    seconds,
)

VIDEO_FORMATS: Final = ("mp4", "webm", "mov")
VIDEO_CODECS: Final = ("h264", "h265", "vp9", "av1")
# Which codecs each container carries; the first one is the format's default codec.
VIDEO_CODECS_BY_FORMAT: Final[dict[str, tuple[str, ...]]] = {
    "mp4": ("h264", "h265", "av1"),
    "webm": ("vp9", "av1"),
    "mov": ("h264", "h265"),
}
IMAGE_FORMATS: Final = ("jpeg", "png", "webp", "avif", "gif")
AUDIO_FORMATS: Final = ("mp3", "aac", "ogg", "opus", "wav", "flac")
ADAPTIVE_FORMATS: Final = ("hls", "dash", "cmaf")
ADAPTIVE_CODECS: Final = ("h264", "h265", "av1")
SEGMENT_DURATION_RANGE: Final = (2, 10)
RUNG_HEIGHT_RANGE: Final = (144, 2160)
MAX_RUNGS: Final = 8
MAX_SUBTITLE_TRACKS: Final = 8
LOSSLESS_AUDIO_FORMATS: Final = ("wav", "flac")
FITS: Final = ("contain", "cover", "fill")
POSITIONS: Final = tuple(POSITION_ANCHORS)

VIDEO_BITRATE_RANGE: Final = (300_000, 60_000_000)
AUDIO_BITRATE_RANGE: Final = (32_000, 320_000)
FPS_RANGE: Final = (1, 60)

# Documented by ittybit but not implemented here: named in the error so users know it is not a typo.
_UNSUPPORTED: Final = frozenset({"layers", "subtitle_url", "subtitle_style", "frames", "interval"})

_LANGUAGE_RE: Final = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")  # BCP 47, e.g. en, pt-BR
_COLOR_RE: Final = re.compile(r"^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")


# --- value parsers: (field name, raw value) -> normalised value, or InvalidRequest -------------


def _positive_seconds(field: str, value: Any) -> float:
    if is_number(value) and value > 0:
        return value
    raise fail(field, "a number of seconds greater than 0", value)


def _fps(field: str, value: Any) -> float:
    low, high = FPS_RANGE
    if is_number(value) and low <= value <= high:
        return value
    raise fail(field, f"a number from {low} to {high}", value)


def _color(field: str, value: Any) -> str:
    if isinstance(value, str) and (match := _COLOR_RE.match(value)):
        digits = match.group(1).lower()
        if len(digits) == 3:
            digits = "".join(c * 2 for c in digits)
        return "#" + digits
    raise fail(field, 'a hex colour like "#000000" or "#000"', value)


_start = seconds(0.0)
_video_bitrate = integer(*VIDEO_BITRATE_RANGE, " number of bits per second")
_audio_bitrate = integer(*AUDIO_BITRATE_RANGE, " number of bits per second")
_quality = choice(QUALITY_LEVELS)
_fit = choice(FITS)
_position = choice(POSITIONS)

_VIDEO_PARSERS: Final[dict[str, Callable[[str, Any], Any]]] = {
    "format": choice(VIDEO_FORMATS),
    "codec": choice(VIDEO_CODECS),
    "quality": _quality,
    "width": length,
    "height": length,
    "fit": _fit,
    "position": _position,
    "background": _color,
    "fps": _fps,
    "start": _start,
    "end": _positive_seconds,
    "duration": _positive_seconds,
    "mute": boolean,
    "bitrate": _video_bitrate,
}
_IMAGE_PARSERS: Final[dict[str, Callable[[str, Any], Any]]] = {
    "format": choice(IMAGE_FORMATS, aliases={"jpg": "jpeg"}),
    "quality": _quality,
    "width": length,
    "height": length,
    "fit": _fit,
    "position": _position,
    "background": _color,
    "start": _start,
}
_AUDIO_PARSERS: Final[dict[str, Callable[[str, Any], Any]]] = {
    "format": choice(AUDIO_FORMATS),
    "quality": _quality,
    "bitrate": _audio_bitrate,
    "start": _start,
    "end": _positive_seconds,
}


def _segment_duration(field: str, value: Any) -> float:
    low, high = SEGMENT_DURATION_RANGE
    if is_number(value) and low <= value <= high:
        return float(value)
    raise fail(field, f"a number of seconds from {low} to {high}", value)


def _object_list(field: str, value: Any, limit: int) -> list[Mapping[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
        raise fail(field, "a list of objects", value)
    if not 1 <= len(value) <= limit:
        raise InvalidRequest(f"options.{field} must be a list of 1 to {limit} objects (got {len(value)}).")
    return value


def _keys(field: str, item: Mapping[str, Any], allowed: tuple[str, ...], required: tuple[str, ...]) -> None:
    for name in item:
        if name not in allowed:
            raise InvalidRequest(
                f"{field}.{name} is not a known field; allowed fields are {', '.join(allowed)}."
            )
    for name in required:
        if item.get(name) is None:
            raise InvalidRequest(f"{field}.{name} is required.")


def _renditions(field: str, value: Any) -> tuple[RungSpec, ...]:
    low, high = RUNG_HEIGHT_RANGE
    rungs: list[RungSpec] = []
    for i, item in enumerate(_object_list(field, value, MAX_RUNGS)):
        name = f"options.{field}[{i}]"
        _keys(name, item, ("height", "bitrate"), ("height",))
        height = item["height"]
        if not (isinstance(height, int) and not isinstance(height, bool) and low <= height <= high):
            raise InvalidRequest(
                f"{name}.height must be an integer from {low} to {high} (got {got(height)})."
            )
        bitrate = item.get("bitrate")
        if bitrate is not None:
            bitrate = _video_bitrate(f"{field}[{i}].bitrate", bitrate)
        rungs.append(RungSpec(height=height - height % 2, bitrate=bitrate))
    heights = [rung.height for rung in rungs]
    if len(set(heights)) != len(heights):
        raise InvalidRequest(f"options.{field} lists the same height twice ({heights}).")
    return tuple(sorted(rungs, key=lambda rung: -rung.height))


def _subtitles(field: str, value: Any) -> tuple[SubtitleSpec, ...]:
    tracks: list[SubtitleSpec] = []
    for i, item in enumerate(_object_list(field, value, MAX_SUBTITLE_TRACKS)):
        name = f"options.{field}[{i}]"
        _keys(name, item, ("url", "label", "language", "default"), ("url",))
        url, label, language, default = (
            item["url"],
            item.get("label"),
            item.get("language"),
            item.get("default"),
        )
        try:
            check_scheme(url if isinstance(url, str) else "")
        except InputError:
            raise InvalidRequest(f"{name}.url must be an http or https URL (got {got(url)}).") from None
        if language is not None and not (isinstance(language, str) and _LANGUAGE_RE.match(language)):
            raise InvalidRequest(
                f'{name}.language must be a language tag like "en" or "pt-BR" (got {got(language)}).'
            )
        if label is not None and not (
            isinstance(label, str) and 0 < len(label) <= 64 and label.isprintable()
        ):
            raise InvalidRequest(
                f"{name}.label must be text of 1 to 64 printable characters (got {got(label)})."
            )
        if default is not None and not isinstance(default, bool):
            raise InvalidRequest(f"{name}.default must be true or false (got {got(default)}).")
        tracks.append(
            SubtitleSpec(
                url=url,
                label=label or language or f"Subtitles {i + 1}",
                language=language,
                default=bool(default),
            )
        )
    if sum(track.default for track in tracks) > 1:
        raise InvalidRequest(f"options.{field}: at most one track can be the default.")
    return tuple(tracks)


_ADAPTIVE_PARSERS: Final[dict[str, Callable[[str, Any], Any]]] = {
    "format": choice(ADAPTIVE_FORMATS),
    "codec": choice(ADAPTIVE_CODECS),
    "quality": _quality,
    "width": length,
    "height": length,
    "fit": _fit,
    "position": _position,
    "background": _color,
    "start": _start,
    "end": _positive_seconds,
    "segment_duration": _segment_duration,
    "renditions": _renditions,
    "subtitles": _subtitles,
}


def _check_window(values: Mapping[str, Any]) -> None:
    start, end = values.get("start"), values.get("end")
    if end is not None and start is not None and end <= start:
        raise InvalidRequest(
            f"options.end must be greater than options.start (got end {end}, start {start})."
        )
    if end is not None and values.get("duration") is not None:
        raise InvalidRequest("options.end and options.duration cannot be used together; give only one.")


def _check_background(values: Mapping[str, Any]) -> None:
    if values.get("background") is not None and values.get("fit") != "contain":
        fit = values.get("fit")
        got = f'fit is "{fit}"' if fit else "no fit was given"
        raise InvalidRequest(f'options.background only applies with options.fit "contain" ({got}).')


@dataclass(frozen=True)
class RungSpec(Echo):
    """One rung of an explicit ladder; ``bitrate`` None takes the ladder table's value."""

    height: int
    bitrate: int | None = None


@dataclass(frozen=True)
class SubtitleSpec(Echo):
    url: str
    label: str
    language: str | None = None
    default: bool = False


class Window:
    """Options that cut a window of the input: ``start``, and ``end`` or (video only) ``duration``."""

    start: float | None
    end: float | None

    def clip(self) -> tuple[float, float | None]:
        """(start, length) in seconds; length None means "to the end of the input"."""
        start = self.start or 0.0
        duration: float | None = getattr(self, "duration", None)
        if duration is not None:
            return start, duration
        return start, (None if self.end is None else self.end - start)


@dataclass(frozen=True)
class VideoOptions(Window, Echo):
    format: str = "mp4"
    codec: str = "h264"
    quality: str = DEFAULT_QUALITY
    width: Length | None = None
    height: Length | None = None
    fit: Fit | None = None
    position: str | None = None
    background: str | None = None
    fps: float | None = None
    start: float | None = None
    end: float | None = None
    duration: float | None = None
    mute: bool = False
    bitrate: int | None = None


@dataclass(frozen=True)
class ImageOptions(Echo):
    format: str | None = None  # None: same as the input (see image_ops.output_format)
    quality: str = DEFAULT_QUALITY
    width: Length | None = None
    height: Length | None = None
    fit: Fit = "fill"
    position: str = "center"
    background: str | None = None
    start: float | None = None


@dataclass(frozen=True)
class AudioOptions(Window, Echo):
    format: str = "mp3"
    quality: str | None = None  # None when a bitrate is given, or lossless without a level
    bitrate: int | None = None
    start: float | None = None
    end: float | None = None


@dataclass(frozen=True)
class AdaptiveOptions(Window, Echo):
    format: str = "hls"
    codec: str = "h264"
    quality: str = DEFAULT_QUALITY
    width: Length | None = None
    height: Length | None = None
    fit: Fit | None = None
    position: str | None = None
    background: str | None = None
    start: float | None = None
    end: float | None = None
    segment_duration: float = 6.0
    renditions: tuple[RungSpec, ...] | None = None
    subtitles: tuple[SubtitleSpec, ...] = ()


def parse_adaptive_options(raw: Mapping[str, Any]) -> AdaptiveOptions:
    """Validate ``adaptive_video`` options (docs: README "adaptive_video")."""
    values = parse_fields("adaptive_video", raw, _ADAPTIVE_PARSERS, unsupported=_UNSUPPORTED)
    _check_window(values)
    _check_background(values)
    return AdaptiveOptions(**values)


def parse_video_options(raw: Mapping[str, Any]) -> VideoOptions:
    """Validate ``video`` options; codec defaults per format, format defaults to mp4 (webm for vp9)."""
    values = parse_fields("video", raw, _VIDEO_PARSERS, unsupported=_UNSUPPORTED)
    _check_window(values)
    _check_background(values)
    codec = values.get("codec")
    fmt = values.setdefault("format", "webm" if codec == "vp9" else "mp4")
    allowed = VIDEO_CODECS_BY_FORMAT[fmt]
    if codec is None:
        values["codec"] = allowed[0]
    elif codec not in allowed:
        raise InvalidRequest(
            f'options.codec "{codec}" cannot be used with options.format "{fmt}"; '
            f"{fmt} allows {', '.join(allowed)}."
        )
    return VideoOptions(**values)


def parse_image_options(raw: Mapping[str, Any]) -> ImageOptions:
    """Validate ``image`` options; ``"jpg"`` is normalised to ``"jpeg"``."""
    values = parse_fields("image", raw, _IMAGE_PARSERS, unsupported=_UNSUPPORTED)
    _check_background(values)
    return ImageOptions(**values)


def parse_audio_options(raw: Mapping[str, Any]) -> AudioOptions:
    """Validate ``audio`` options; quality and bitrate exclude each other, lossless takes neither."""
    values = parse_fields("audio", raw, _AUDIO_PARSERS, unsupported=_UNSUPPORTED)
    _check_window(values)
    fmt = values.setdefault("format", "mp3")
    if "quality" in values and "bitrate" in values:
        raise InvalidRequest("options.quality and options.bitrate cannot be used together; give only one.")
    if fmt in LOSSLESS_AUDIO_FORMATS:
        if "bitrate" in values:
            raise InvalidRequest(f'options.bitrate does not apply to the lossless format "{fmt}".')
    elif "bitrate" not in values:
        values.setdefault("quality", DEFAULT_QUALITY)
    return AudioOptions(**values)
