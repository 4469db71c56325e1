"""Option validation for the video, image and audio kinds: every rule, and the message names the field."""

from __future__ import annotations

from typing import Any

import pytest

from media_service.options import (
    AudioOptions,
    ImageOptions,
    VideoOptions,
    parse_audio_options,
    parse_image_options,
    parse_video_options,
)
from taskkit.errors import InvalidRequest
from taskkit.media import Percent


def _error(parse: Any, raw: Any) -> str:
    with pytest.raises(InvalidRequest) as info:
        parse(raw)
    assert info.value.kind == "request_invalid"
    return info.value.message


# --- video ------------------------------------------------------------------------------------


def test_video_defaults_are_resolved() -> None:
    opts = parse_video_options({})
    assert opts == VideoOptions(format="mp4", codec="h264", quality="medium")
    assert opts.to_dict() == {"format": "mp4", "codec": "h264", "quality": "medium", "mute": False}


def test_video_full_options_normalise_and_echo() -> None:
    raw = {
        "format": "webm",
        "width": 640,
        "height": "50%",
        "fit": "contain",
        "position": "top_left",
        "background": "#FfF",
        "quality": "high",
        "start": 1.5,
        "duration": 2,
        "fps": 29.97,
        "mute": True,
        "bitrate": 1_000_000,
    }
    opts = parse_video_options(raw)
    assert opts.codec == "vp9"
    assert opts.height == Percent(50.0)
    assert opts.background == "#ffffff"
    assert opts.to_dict() == {**raw, "codec": "vp9", "height": "50%", "background": "#ffffff"}


@pytest.mark.parametrize(
    ("fmt", "codec"),
    [("mp4", "h264"), ("webm", "vp9"), ("mov", "h264")],
)
def test_video_codec_defaults_per_format(fmt: str, codec: str) -> None:
    assert parse_video_options({"format": fmt}).codec == codec


def test_video_vp9_alone_picks_webm() -> None:
    assert parse_video_options({"codec": "vp9"}).format == "webm"
    assert parse_video_options({"codec": "av1"}).format == "mp4"


@pytest.mark.parametrize(
    ("fmt", "codec", "ok"),
    [
        ("mp4", "h264", True),
        ("mp4", "h265", True),
        ("mp4", "av1", True),
        ("mp4", "vp9", False),
        ("mov", "h264", True),
        ("mov", "h265", True),
        ("mov", "vp9", False),
        ("mov", "av1", False),
        ("webm", "vp9", True),
        ("webm", "av1", True),
        ("webm", "h264", False),
        ("webm", "h265", False),
    ],
)
def test_video_format_codec_pairs(fmt: str, codec: str, ok: bool) -> None:
    if ok:
        assert parse_video_options({"format": fmt, "codec": codec}).codec == codec
    else:
        message = _error(parse_video_options, {"format": fmt, "codec": codec})
        assert f'options.codec "{codec}"' in message
        assert f'options.format "{fmt}"' in message


def test_video_bad_format_message() -> None:
    assert (
        _error(parse_video_options, {"format": "avi"})
        == 'options.format must be one of mp4, webm, mov (got "avi").'
    )


def test_video_bad_width_message() -> None:
    assert (
        _error(parse_video_options, {"width": -5})
        == 'options.width must be a positive integer or a percentage like "50%" (got -5).'
    )


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"codec": "mpeg2"}, "options.codec"),
        ({"quality": "ultra"}, "options.quality"),
        ({"quality": 5}, "options.quality"),
        ({"width": 0}, "options.width"),
        ({"width": 640.5}, "options.width"),
        ({"width": "640"}, "options.width"),
        ({"width": True}, "options.width"),
        ({"width": 20_000}, "options.width"),
        ({"height": "0%"}, "options.height"),
        ({"height": "1001%"}, "options.height"),
        ({"height": "-5%"}, "options.height"),
        ({"height": "50 %"}, "options.height"),
        ({"fit": "stretch"}, "options.fit"),
        ({"position": "middle"}, "options.position"),
        ({"background": "red", "fit": "contain"}, "options.background"),
        ({"background": "#12345", "fit": "contain"}, "options.background"),
        ({"fps": 0}, "options.fps"),
        ({"fps": 61}, "options.fps"),
        ({"fps": "10"}, "options.fps"),
        ({"fps": True}, "options.fps"),
        ({"fps": float("nan")}, "options.fps"),
        ({"start": -1}, "options.start"),
        ({"start": "1"}, "options.start"),
        ({"end": 0}, "options.end"),
        ({"duration": 0}, "options.duration"),
        ({"duration": -2}, "options.duration"),
        ({"mute": "yes"}, "options.mute"),
        ({"mute": 1}, "options.mute"),
        ({"bitrate": 299_999}, "options.bitrate"),
        ({"bitrate": 60_000_001}, "options.bitrate"),
        ({"bitrate": 1e6}, "options.bitrate"),
        ({"bitrate": True}, "options.bitrate"),
    ],
)
def test_video_bad_values_name_the_field(raw: dict[str, Any], field: str) -> None:
    message = _error(parse_video_options, raw)
    assert message.startswith(field + " must be")
    assert "(got " in message and message.endswith(").")


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("format", "avi", "one of mp4, webm, mov"),
        ("codec", "x", "one of h264, h265, vp9, av1"),
        ("quality", "x", "one of very_low, low, medium, high, very_high"),
        ("fit", "x", "one of contain, cover, fill"),
        ("fps", 0, "from 1 to 60"),
        ("bitrate", 1, "from 300000 to 60000000"),
        ("width", 99_999, "at most 16384 pixels"),
    ],
)
def test_video_messages_list_the_allowed_values(field: str, value: Any, expected: str) -> None:
    assert expected in _error(parse_video_options, {field: value})


def test_video_position_message_lists_all_nine() -> None:
    message = _error(parse_video_options, {"position": "middle"})
    for name in ("center", "top", "bottom", "left", "right", "top_left", "top_right", "bottom_left"):
        assert name in message
    assert "bottom_right" in message


@pytest.mark.parametrize("value", ["50%", "12.5%", "1000%", "0.1%"])
def test_percent_lengths_are_accepted(value: str) -> None:
    opts = parse_video_options({"width": value})
    assert isinstance(opts.width, Percent)
    assert opts.to_dict()["width"] == value


def test_unknown_option_names_field_and_allowed_names() -> None:
    message = _error(parse_video_options, {"resolution": "720p"})
    assert message.startswith("options.resolution is not a known option for kind video")
    assert "allowed options are background, bitrate, codec, duration, end, fit, format, fps" in message


def test_documented_but_unsupported_option_says_so() -> None:
    message = _error(parse_video_options, {"layers": []})
    assert message.startswith("options.layers is not supported by this server")


def test_options_must_be_an_object() -> None:
    assert _error(parse_video_options, ["mp4"]).startswith("options must be a JSON object")


def test_null_means_not_given() -> None:
    assert parse_video_options({"width": None, "fps": None}) == parse_video_options({})


def test_end_must_follow_start() -> None:
    message = _error(parse_video_options, {"start": 5, "end": 5})
    assert message.startswith("options.end must be greater than options.start")
    assert parse_video_options({"start": 1, "end": 3}).clip() == (1, 2)


def test_end_and_duration_together_rejected() -> None:
    message = _error(parse_video_options, {"end": 3, "duration": 2})
    assert "options.end and options.duration" in message


def test_clip_window() -> None:
    assert parse_video_options({}).clip() == (0.0, None)
    assert parse_video_options({"duration": 4}).clip() == (0.0, 4)
    assert parse_video_options({"start": 2, "duration": 4}).clip() == (2, 4)
    assert parse_video_options({"end": 4}).clip() == (0.0, 4)


@pytest.mark.parametrize("fit", [None, "cover", "fill"])
def test_background_requires_fit_contain(fit: str | None) -> None:
    raw: dict[str, Any] = {"background": "#000000", "width": 10, "height": 10}
    if fit:
        raw["fit"] = fit
    message = _error(parse_video_options, raw)
    assert message.startswith('options.background only applies with options.fit "contain"')
    assert parse_video_options({**raw, "fit": "contain"}).background == "#000000"


# --- image ------------------------------------------------------------------------------------


def test_image_defaults() -> None:
    opts = parse_image_options({})
    assert opts == ImageOptions(format=None, quality="medium", fit="fill", position="center")
    assert opts.to_dict() == {"quality": "medium", "fit": "fill", "position": "center"}


def test_image_jpg_is_an_alias_of_jpeg() -> None:
    assert parse_image_options({"format": "jpg"}).format == "jpeg"
    assert parse_image_options({"format": "jpg"}).to_dict()["format"] == "jpeg"


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "avif", "gif"])
def test_image_formats(fmt: str) -> None:
    assert parse_image_options({"format": fmt}).format == fmt


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"format": "heic"}, "options.format"),
        ({"format": "JPEG"}, "options.format"),
        ({"quality": 80}, "options.quality"),
        ({"width": -1}, "options.width"),
        ({"height": "abc"}, "options.height"),
        ({"fit": "none"}, "options.fit"),
        ({"position": "centre"}, "options.position"),
        ({"start": -0.5}, "options.start"),
        ({"start": False}, "options.start"),
    ],
)
def test_image_bad_values_name_the_field(raw: dict[str, Any], field: str) -> None:
    assert _error(parse_image_options, raw).startswith(field + " must be")


def test_image_format_message_lists_formats() -> None:
    assert "one of jpeg, png, webp, avif, gif" in _error(parse_image_options, {"format": "bmp"})


def test_image_rejects_video_only_options() -> None:
    message = _error(parse_image_options, {"fps": 10})
    assert message.startswith("options.fps is not a known option for kind image")
    assert "allowed options are background, fit, format, height, position, quality, start, width" in message


def test_image_background_requires_contain() -> None:
    assert "options.background" in _error(parse_image_options, {"background": "#fff"})
    assert parse_image_options({"background": "#fff", "fit": "contain"}).background == "#ffffff"


# --- audio ------------------------------------------------------------------------------------


def test_audio_defaults() -> None:
    opts = parse_audio_options({})
    assert opts == AudioOptions(format="mp3", quality="medium")
    assert opts.to_dict() == {"format": "mp3", "quality": "medium"}


@pytest.mark.parametrize("fmt", ["mp3", "aac", "ogg", "opus", "wav", "flac"])
def test_audio_formats(fmt: str) -> None:
    assert parse_audio_options({"format": fmt}).format == fmt


def test_audio_bitrate_replaces_quality() -> None:
    opts = parse_audio_options({"format": "aac", "bitrate": 64_000})
    assert opts.quality is None
    assert opts.to_dict() == {"format": "aac", "bitrate": 64_000}


def test_audio_quality_and_bitrate_together_rejected() -> None:
    message = _error(parse_audio_options, {"quality": "low", "bitrate": 64_000})
    assert "options.quality and options.bitrate" in message


@pytest.mark.parametrize("fmt", ["wav", "flac"])
def test_audio_lossless_takes_no_bitrate_and_no_default_quality(fmt: str) -> None:
    assert f'"{fmt}"' in _error(parse_audio_options, {"format": fmt, "bitrate": 128_000})
    assert parse_audio_options({"format": fmt}).quality is None


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"format": "alac"}, "options.format"),
        ({"format": "m4a"}, "options.format"),
        ({"bitrate": 31_999}, "options.bitrate"),
        ({"bitrate": 320_001}, "options.bitrate"),
        ({"bitrate": "128k"}, "options.bitrate"),
        ({"start": -1}, "options.start"),
        ({"end": -1}, "options.end"),
        ({"quality": "best"}, "options.quality"),
    ],
)
def test_audio_bad_values_name_the_field(raw: dict[str, Any], field: str) -> None:
    assert _error(parse_audio_options, raw).startswith(field + " must be")


def test_audio_bitrate_message_gives_range() -> None:
    assert "from 32000 to 320000" in _error(parse_audio_options, {"bitrate": 1})


def test_audio_end_must_follow_start_and_duration_is_unknown() -> None:
    assert "options.end must be greater" in _error(parse_audio_options, {"start": 3, "end": 2})
    assert "options.duration is not a known option for kind audio" in _error(
        parse_audio_options, {"duration": 2}
    )
    assert parse_audio_options({"start": 1, "end": 4}).clip() == (1, 3)
