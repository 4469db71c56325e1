"""Geometry math, the video/audio argv builders, and a few real ffmpeg runs checked with ffprobe."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from media_service import audio_argv, video_argv
from media_service.options import parse_audio_options, parse_video_options
from taskkit.errors import InputError
from taskkit.media import (
    QUALITY_LEVELS,
    Layout,
    Percent,
    ProbeResult,
    apply_layout,
    audio_bitrate,
    compute_layout,
    ffmpeg_filters,
    image_quality,
    mjpeg_qscale,
    probe,
    target_size,
    video_crf,
)
from taskkit.media.probe import AudioStream, VideoStream

SRC = Path("/in/source.mp4")
DST = Path("/out/result")
LIMIT = 64_000_000  # settings.max_pixels' default


def fake_probe(
    *,
    width: int = 320,
    height: int = 240,
    rotation: int = 0,
    duration: float | None = 10.0,
    channels: int | None = 2,
    video: bool = True,
) -> ProbeResult:
    return ProbeResult(
        format_name="mov,mp4,m4a,3gp,3g2,mj2",
        mime_type="video/mp4",
        duration=duration,
        size=1000,
        video=VideoStream("h264", width, height, 25.0, rotation) if video else None,
        audio=AudioStream("aac", channels, 48000) if channels else None,
    )


def after(argv: list[str], flag: str) -> str:
    """The value following ``flag`` (the last occurrence)."""
    index = len(argv) - 1 - argv[::-1].index(flag)
    return argv[index + 1]


def vf(argv: list[str]) -> list[str]:
    return after(argv, "-vf").split(",")


# --- quality table ----------------------------------------------------------------------------


def test_quality_table_is_monotonic() -> None:
    for codec in ("h264", "h265", "vp9", "av1"):
        crfs = [video_crf(codec, level) for level in QUALITY_LEVELS]
        assert crfs == sorted(crfs, reverse=True), codec
    for fmt in ("jpeg", "webp", "avif"):
        qs = [image_quality(fmt, level) for level in QUALITY_LEVELS]
        assert qs == sorted(qs) and all(0 < q <= 100 for q in qs), fmt
    for codec in ("mp3", "aac", "opus", "vorbis"):
        rates = [audio_bitrate(codec, level) for level in QUALITY_LEVELS]
        assert rates == sorted(rates) and all(32_000 <= r <= 320_000 for r in rates), codec
    assert [mjpeg_qscale(level) for level in QUALITY_LEVELS] == [12, 8, 5, 3, 2]


def test_quality_default_is_medium() -> None:
    assert video_crf("h264", None) == video_crf("h264", "medium") == 23
    assert audio_bitrate("aac", None) == 128_000


# --- geometry ---------------------------------------------------------------------------------


def test_no_size_keeps_input_but_even_for_video() -> None:
    assert target_size(320, 240, None, None, even=True, max_pixels=LIMIT) == (320, 240)
    assert target_size(321, 241, None, None, even=True, max_pixels=LIMIT) == (322, 242)
    assert target_size(321, 241, None, None, even=False, max_pixels=LIMIT) == (321, 241)


def test_one_side_keeps_aspect_ratio() -> None:
    assert target_size(1920, 1080, None, 360, even=True, max_pixels=LIMIT) == (640, 360)
    assert target_size(1920, 1080, 641, None, even=True, max_pixels=LIMIT) == (642, 360)
    assert target_size(1920, 1080, 641, None, even=False, max_pixels=LIMIT) == (641, 361)


def test_percent_sizes() -> None:
    assert target_size(1280, 720, Percent(50), None, even=True, max_pixels=LIMIT) == (640, 360)
    assert target_size(320, 240, Percent(12.5), Percent(25), even=False, max_pixels=LIMIT) == (40, 60)
    assert target_size(320, 240, None, Percent(200), even=True, max_pixels=LIMIT) == (640, 480)


def test_minimum_size() -> None:
    assert target_size(320, 240, 1, None, even=True, max_pixels=LIMIT) == (2, 2)
    assert target_size(320, 240, 1, None, even=False, max_pixels=LIMIT) == (1, 1)


def test_output_over_max_dimension_is_an_input_error() -> None:
    with pytest.raises(InputError, match="over the limit of 16384 pixels"):
        target_size(8000, 100, Percent(1000), None, even=True, max_pixels=LIMIT)


def test_percent_output_over_the_pixel_limit_names_the_limit() -> None:
    # The reported case: an 11 KB 1638x1638 PNG at 1000% would be 268 Mpx, 4x the input limit.
    with pytest.raises(InputError) as caught:
        target_size(1638, 1638, Percent(1000), Percent(1000), even=False, max_pixels=LIMIT)
    assert caught.value.message == (
        "the output would be 16380×16380 pixels (268,304,400), over the limit of 64,000,000 pixels"
    )
    with pytest.raises(InputError, match=r"^the output would be 12800×7200 pixels \(92,160,000\), over"):
        compute_layout(
            1280, 720, width=Percent(1000), height=None, fit=None, position=None, even=True, max_pixels=LIMIT
        )


def test_output_exactly_at_the_pixel_limit_is_allowed() -> None:
    assert target_size(800, 800, Percent(1000), None, even=False, max_pixels=LIMIT) == (8000, 8000)
    assert target_size(800, 800, 8000, 8000, even=True, max_pixels=LIMIT) == (8000, 8000)
    with pytest.raises(InputError, match="over the limit of 63,999,999 pixels"):
        target_size(800, 800, Percent(1000), None, even=False, max_pixels=LIMIT - 1)
    # The limit is the caller's (settings.max_pixels), not a constant.
    assert target_size(320, 240, None, None, even=True, max_pixels=320 * 240) == (320, 240)
    with pytest.raises(InputError, match=r"320×240 pixels \(76,800\), over the limit of 76,799 pixels"):
        target_size(320, 240, None, None, even=True, max_pixels=320 * 240 - 1)


def test_cover_bounds_the_scaled_picture_not_only_the_output() -> None:
    # A 1000x1000 crop of a 16000x10 strip scales it to 1,600,000x1000 first.
    with pytest.raises(InputError) as caught:
        compute_layout(
            16000, 10, width=1000, height=1000, fit="cover", position=None, even=False, max_pixels=LIMIT
        )
    assert caught.value.message == (
        "with fit cover the picture would be scaled to 1600000×1000 pixels (1,600,000,000) before its "
        "crop to 1000×1000, over the limit of 64,000,000 pixels"
    )
    # contain and fill of the same box stay inside it.
    for fit in ("contain", "fill"):
        layout = compute_layout(
            16000, 10, width=1000, height=1000, fit=fit, position=None, even=False, max_pixels=LIMIT
        )
        assert (layout.width, layout.height) == (1000, 1000)
    # A scaled picture exactly at the limit is allowed, one pixel over is not.
    layout = compute_layout(
        2, 1, width=4000, height=4000, fit="cover", position=None, even=False, max_pixels=32_000_000
    )
    assert (layout.scaled_width, layout.scaled_height, layout.width, layout.height) == (
        8000,
        4000,
        4000,
        4000,
    )
    with pytest.raises(InputError, match="scaled to 8000×4000 pixels"):
        compute_layout(
            2, 1, width=4000, height=4000, fit="cover", position=None, even=False, max_pixels=31_999_999
        )


def test_fit_without_both_sides_is_fill() -> None:
    layout = compute_layout(
        1920, 1080, width=640, height=None, fit="cover", position="left", even=True, max_pixels=LIMIT
    )
    assert layout == Layout("fill", 640, 360, 640, 360, 0, 0)


@pytest.mark.parametrize(
    ("position", "x", "y"),
    [
        ("center", 0, 140),
        ("top", 0, 0),
        ("bottom", 0, 280),
        ("left", 0, 140),
        ("top_right", 0, 0),
        ("bottom_left", 0, 280),
    ],
)
def test_contain_offsets(position: str, x: int, y: int) -> None:
    layout = compute_layout(
        1920, 1080, width=640, height=640, fit="contain", position=position, even=True, max_pixels=LIMIT
    )
    assert (layout.width, layout.height, layout.scaled_width, layout.scaled_height) == (640, 640, 640, 360)
    assert (layout.x, layout.y) == (x, y)


def test_contain_even_rounding_of_picture_and_offset() -> None:
    layout = compute_layout(
        1280, 720, width=500, height=500, fit="contain", position=None, even=True, max_pixels=LIMIT
    )
    assert (layout.scaled_width, layout.scaled_height) == (500, 282)
    assert layout.y == 108  # 109 floored to even for 4:2:0
    image_layout = compute_layout(
        1280, 720, width=500, height=500, fit="contain", position=None, even=False, max_pixels=LIMIT
    )
    assert (image_layout.scaled_height, image_layout.y) == (281, 109)


@pytest.mark.parametrize(
    ("position", "even", "x"),
    [("center", True, 248), ("center", False, 249), ("left", True, 0), ("right", True, 498)],
)
def test_cover_offsets(position: str, even: bool, x: int) -> None:
    layout = compute_layout(
        1920, 1080, width=640, height=640, fit="cover", position=position, even=even, max_pixels=LIMIT
    )
    assert (layout.scaled_width, layout.scaled_height) == (1138, 640)
    assert (layout.x, layout.y) == (x, 0)


def test_cover_vertical_positions() -> None:
    top = compute_layout(
        1080, 1920, width=400, height=400, fit="cover", position="top", even=True, max_pixels=LIMIT
    )
    bottom = compute_layout(
        1080, 1920, width=400, height=400, fit="cover", position="bottom", even=True, max_pixels=LIMIT
    )
    assert (top.scaled_width, top.scaled_height) == (400, 712)
    assert (top.x, top.y, bottom.y) == (0, 0, 312)


def test_ffmpeg_filters_per_fit() -> None:
    assert ffmpeg_filters(Layout("fill", 64, 48, 64, 48), background=None, alpha=False) == [
        "scale=64:48:flags=lanczos",
        "setsar=1",
    ]
    contain = Layout("contain", 100, 100, 100, 56, 0, 22)
    assert ffmpeg_filters(contain, background="#ff8800", alpha=True) == [
        "scale=100:56:flags=lanczos",
        "pad=100:100:0:22:color=0xff8800",
        "setsar=1",
    ]
    assert ffmpeg_filters(contain, background=None, alpha=False)[1] == "pad=100:100:0:22:color=black"
    assert ffmpeg_filters(contain, background=None, alpha=True)[1:3] == [
        "format=rgba",
        "pad=100:100:0:22:color=black@0",
    ]
    cover = Layout("cover", 100, 100, 178, 100, 38, 0)
    assert ffmpeg_filters(cover, background=None, alpha=False)[1] == "crop=100:100:38:0"


def test_apply_layout_with_pillow_matches_the_math() -> None:
    image = Image.new("RGB", (200, 100), (255, 0, 0))
    layout = compute_layout(
        200, 100, width=100, height=100, fit="contain", position="top", even=False, max_pixels=LIMIT
    )
    out = apply_layout(image, layout, fill=(0, 0, 255))
    assert out.size == (100, 100)
    assert out.getpixel((50, 10)) == (255, 0, 0)
    assert out.getpixel((50, 90)) == (0, 0, 255)
    halves = Image.new("RGB", (200, 100), (255, 0, 0))
    halves.paste((0, 255, 0), (100, 0, 200, 100))
    for position, colour in (("left", (255, 0, 0)), ("right", (0, 255, 0))):
        cover = compute_layout(
            200, 100, width=50, height=100, fit="cover", position=position, even=False, max_pixels=LIMIT
        )
        assert apply_layout(halves, cover, fill=(0, 0, 0)).getpixel((25, 50)) == colour


# --- video argv -------------------------------------------------------------------------------


def test_video_argv_default_mp4() -> None:
    argv = video_argv.build_video_argv(
        SRC, DST, parse_video_options({}), fake_probe(), ffmpeg="/usr/bin/ffmpeg"
    )
    assert argv[:6] == ["/usr/bin/ffmpeg", "-hide_banner", "-nostdin", "-y", "-loglevel", "error"]
    assert argv[-3:] == ["-f", "mp4", str(DST)]
    assert after(argv, "-i") == str(SRC)
    assert "-ss" not in argv and "-t" not in argv and "-progress" not in argv
    assert after(argv, "-c:v") == "libx264"
    assert (after(argv, "-preset"), after(argv, "-crf")) == ("veryfast", "23")
    assert after(argv, "-pix_fmt") == "yuv420p"
    assert after(argv, "-movflags") == "+faststart"
    assert (after(argv, "-c:a"), after(argv, "-b:a")) == ("aac", "128000")
    assert "-ac" not in argv and "-an" not in argv and "-maxrate" not in argv
    maps = [argv[i + 1] for i, a in enumerate(argv) if a == "-map"]
    assert maps == ["0:v:0", "0:a:0?"]
    assert after(argv, "-map_metadata") == "-1"
    assert vf(argv) == ["scale=320:240:flags=lanczos", "setsar=1"]


def test_video_argv_trim_seeks_before_input() -> None:
    argv = video_argv.build_video_argv(SRC, DST, parse_video_options({"start": 1.5, "end": 4}), fake_probe())
    assert argv.index("-ss") < argv.index("-i") < argv.index("-t")
    assert (after(argv, "-ss"), after(argv, "-t")) == ("1.500", "2.500")
    argv = video_argv.build_video_argv(SRC, DST, parse_video_options({"duration": 3}), fake_probe())
    assert "-ss" not in argv and after(argv, "-t") == "3.000"


def test_video_argv_start_beyond_input_is_an_input_error() -> None:
    with pytest.raises(InputError, match=r"options\.start \(12 s\) is at or beyond the end of the input"):
        video_argv.build_video_argv(SRC, DST, parse_video_options({"start": 12}), fake_probe())


def test_video_argv_needs_a_video_stream() -> None:
    with pytest.raises(InputError, match="no video stream"):
        video_argv.build_video_argv(SRC, DST, parse_video_options({}), fake_probe(video=False))
    still = dataclasses.replace(fake_probe(duration=None, channels=None), is_image=True)
    with pytest.raises(InputError, match="still image, not a video"):
        video_argv.build_video_argv(SRC, DST, parse_video_options({}), still)


@pytest.mark.parametrize(("mute", "channels"), [(True, 2), (False, None)])
def test_video_argv_without_audio(mute: bool, channels: int | None) -> None:
    argv = video_argv.build_video_argv(
        SRC, DST, parse_video_options({"mute": mute}), fake_probe(channels=channels)
    )
    assert "-an" in argv
    assert "0:a:0?" not in argv and "-c:a" not in argv


def test_video_argv_downmixes_surround() -> None:
    argv = video_argv.build_video_argv(SRC, DST, parse_video_options({}), fake_probe(channels=6))
    assert after(argv, "-ac") == "2"


def test_video_argv_fps_and_size() -> None:
    opts = parse_video_options({"fps": 12, "width": 161})
    assert vf(video_argv.build_video_argv(SRC, DST, opts, fake_probe())) == [
        "fps=12",
        "scale=162:120:flags=lanczos",
        "setsar=1",
    ]


def test_video_argv_uses_display_size_of_rotated_input() -> None:
    argv = video_argv.build_video_argv(SRC, DST, parse_video_options({}), fake_probe(rotation=90))
    assert vf(argv)[0] == "scale=240:320:flags=lanczos"


def test_video_argv_contain_pads_with_background() -> None:
    opts = parse_video_options({"width": 320, "height": 320, "fit": "contain", "background": "#102030"})
    assert vf(video_argv.build_video_argv(SRC, DST, opts, fake_probe())) == [
        "scale=320:240:flags=lanczos",
        "pad=320:320:0:40:color=0x102030",
        "setsar=1",
    ]


def test_video_argv_h264_bitrate_cap() -> None:
    opts = parse_video_options({"bitrate": 1_000_000, "quality": "very_high"})
    argv = video_argv.build_video_argv(SRC, DST, opts, fake_probe())
    assert (after(argv, "-crf"), after(argv, "-maxrate"), after(argv, "-bufsize")) == (
        "18",
        "1000000",
        "2000000",
    )
    assert after(argv, "-b:a") == "256000"


@pytest.mark.parametrize("fmt", ["mp4", "mov"])
def test_video_argv_h265_gets_hvc1_tag(fmt: str) -> None:
    argv = video_argv.build_video_argv(
        SRC, DST, parse_video_options({"format": fmt, "codec": "h265"}), fake_probe()
    )
    assert (after(argv, "-c:v"), after(argv, "-crf"), after(argv, "-tag:v")) == ("libx265", "26", "hvc1")
    assert after(argv, "-f") == fmt and after(argv, "-movflags") == "+faststart"


def test_video_argv_webm_vp9_opus() -> None:
    argv = video_argv.build_video_argv(SRC, DST, parse_video_options({"format": "webm"}), fake_probe())
    assert after(argv, "-c:v") == "libvpx-vp9"
    assert (after(argv, "-crf"), after(argv, "-b:v")) == ("33", "0")
    assert (after(argv, "-deadline"), after(argv, "-cpu-used"), after(argv, "-row-mt")) == ("good", "4", "1")
    assert (after(argv, "-c:a"), after(argv, "-b:a")) == ("libopus", "96000")
    assert "-movflags" not in argv and after(argv, "-f") == "webm"
    capped = video_argv.build_video_argv(
        SRC, DST, parse_video_options({"format": "webm", "bitrate": 500_000}), fake_probe()
    )
    assert after(capped, "-b:v") == "500000"


def test_video_argv_av1() -> None:
    opts = parse_video_options({"codec": "av1", "bitrate": 2_000_000, "quality": "low"})
    argv = video_argv.build_video_argv(SRC, DST, opts, fake_probe())
    assert (after(argv, "-c:v"), after(argv, "-preset"), after(argv, "-crf")) == ("libsvtav1", "8", "42")
    assert after(argv, "-maxrate") == "2000000"


def test_video_argv_refuses_sizes_the_encoder_cannot_take() -> None:
    with pytest.raises(InputError, match=r"the output would be 32×24 pixels, but av1 needs at least 64×64"):
        video_argv.build_video_argv(
            SRC, DST, parse_video_options({"codec": "av1", "width": 32}), fake_probe()
        )


def test_video_argv_refuses_outputs_over_the_pixel_limit() -> None:
    hd = fake_probe(width=1280, height=720)
    opts = parse_video_options({"width": "1000%"})
    message = "the output would be 12800×7200 pixels (92,160,000), over the limit of 64,000,000 pixels"
    with pytest.raises(InputError) as caught:
        video_argv.build_video_argv(SRC, DST, opts, hd, max_pixels=LIMIT)
    assert caught.value.message == message
    # Without max_pixels the builder uses the settings' default (64,000,000).
    with pytest.raises(InputError) as caught:
        video_argv.build_video_argv(SRC, DST, opts, hd)
    assert caught.value.message == message
    # The configured limit is the one applied.
    small = parse_video_options({"width": "200%"})
    assert vf(video_argv.build_video_argv(SRC, DST, small, fake_probe(), max_pixels=640 * 480))[0] == (
        "scale=640:480:flags=lanczos"
    )
    with pytest.raises(InputError, match="over the limit of 307,199 pixels"):
        video_argv.build_video_argv(SRC, DST, small, fake_probe(), max_pixels=640 * 480 - 1)
    cover = parse_video_options({"width": "1000%", "height": "100%", "fit": "cover"})
    with pytest.raises(InputError, match=r"^with fit cover the picture would be scaled to 12800×7200"):
        video_argv.build_video_argv(SRC, DST, cover, hd)


@pytest.mark.parametrize(
    ("raw", "duration", "expected"),
    [
        ({}, 10.0, 10.0),
        ({"start": 4}, 10.0, 6.0),
        ({"start": 4, "duration": 2}, 10.0, 2.0),
        ({"start": 8, "duration": 5}, 10.0, 2.0),
        ({"end": 30}, 10.0, 10.0),
        ({"end": 3}, None, 3.0),
        ({}, None, None),
    ],
)
def test_expected_duration(raw: dict[str, Any], duration: float | None, expected: float | None) -> None:
    assert video_argv.expected_duration(parse_video_options(raw), fake_probe(duration=duration)) == expected


def test_video_output_names() -> None:
    assert [video_argv.output_extension(f) for f in ("mp4", "webm", "mov")] == [".mp4", ".webm", ".mov"]
    assert [video_argv.output_mime(f) for f in ("mp4", "webm", "mov")] == [
        "video/mp4",
        "video/webm",
        "video/quicktime",
    ]


# --- audio argv -------------------------------------------------------------------------------


def test_audio_argv_needs_audio() -> None:
    with pytest.raises(InputError) as info:
        audio_argv.build_audio_argv(SRC, DST, parse_audio_options({}), fake_probe(channels=None))
    assert info.value.message == "the input has no audio stream"


@pytest.mark.parametrize(
    ("fmt", "encoder", "muxer", "bitrate"),
    [
        ("mp3", "libmp3lame", "mp3", "192000"),
        ("aac", "aac", "ipod", "128000"),
        ("ogg", "libvorbis", "ogg", "128000"),
        ("opus", "libopus", "opus", "96000"),
        ("wav", "pcm_s16le", "wav", None),
        ("flac", "flac", "flac", None),
    ],
)
def test_audio_argv_per_format(fmt: str, encoder: str, muxer: str, bitrate: str | None) -> None:
    argv = audio_argv.build_audio_argv(SRC, DST, parse_audio_options({"format": fmt}), fake_probe())
    assert argv[:6] == ["ffmpeg", "-hide_banner", "-nostdin", "-y", "-loglevel", "error"]
    assert "-vn" in argv and after(argv, "-map") == "0:a:0"
    assert after(argv, "-c:a") == encoder
    assert argv[-3:] == ["-f", muxer, str(DST)]
    assert (after(argv, "-b:a") if "-b:a" in argv else None) == bitrate
    assert ("-movflags" in argv) == (fmt == "aac")
    assert "-ac" not in argv


def test_audio_argv_bitrate_trim_and_downmix() -> None:
    opts = parse_audio_options({"format": "aac", "bitrate": 64_000, "start": 1, "end": 3})
    argv = audio_argv.build_audio_argv(SRC, DST, opts, fake_probe(channels=6))
    assert after(argv, "-b:a") == "64000" and after(argv, "-ac") == "2"
    assert argv.index("-ss") < argv.index("-i") and (after(argv, "-ss"), after(argv, "-t")) == (
        "1.000",
        "2.000",
    )
    assert video_argv.expected_duration(opts, fake_probe()) == 2.0


def test_audio_argv_start_beyond_input() -> None:
    with pytest.raises(InputError, match="beyond the end of the input"):
        audio_argv.build_audio_argv(SRC, DST, parse_audio_options({"start": 10}), fake_probe(duration=10.0))


def test_audio_output_names() -> None:
    formats = ("mp3", "aac", "ogg", "opus", "wav", "flac")
    assert [audio_argv.output_extension(f) for f in formats] == [
        ".mp3",
        ".m4a",
        ".ogg",
        ".opus",
        ".wav",
        ".flac",
    ]
    assert [audio_argv.output_mime(f) for f in formats] == [
        "audio/mpeg",
        "audio/mp4",
        "audio/ogg",
        "audio/ogg",
        "audio/wav",
        "audio/flac",
    ]


# --- real ffmpeg runs -------------------------------------------------------------------------


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-y", "-loglevel", "error", *args], check=True)


def ffprobe(path: Path) -> dict[str, Any]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)],
        check=True,
        capture_output=True,
    ).stdout
    return json.loads(out)


def streams(info: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [s for s in info["streams"] if s["codec_type"] == kind]


def run(argv: list[str]) -> None:
    """Run a built argv; SVT_LOG=1 keeps SVT-AV1's info banner out of stderr."""
    subprocess.run(argv, check=True, capture_output=True, env={**os.environ, "SVT_LOG": "1"})


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny inputs: 1 s of 320x240 25 fps video with 5.1 audio, the same rotated, 5.1 wav."""
    root = tmp_path_factory.mktemp("media")
    av, rotated, plain, surround = (root / n for n in ("av.mp4", "rotated.mp4", "plain.mp4", "surround.wav"))
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=1",
        "-f", "lavfi", "-i", "sine=frequency=440:duration=1:sample_rate=44100",
        "-ac", "6", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
        "-shortest", str(av),
    )  # fmt: skip
    ffmpeg("-i", str(av), "-map", "0:v", "-c", "copy", str(plain))
    ffmpeg("-i", str(plain), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(rotated))
    ffmpeg("-f", "lavfi", "-i", "sine=duration=1", "-ac", "6", "-c:a", "pcm_s16le", str(surround))
    return {"av": av, "rotated": rotated, "plain": plain, "surround": surround}


def probed(path: Path) -> ProbeResult:
    return asyncio.run(probe(path))


def test_real_webm_vp9_opus_downmixed(media: dict[str, Path], tmp_path: Path) -> None:
    dst = tmp_path / "out.webm"
    opts = parse_video_options({"format": "webm", "width": 160, "quality": "very_low"})
    run(video_argv.build_video_argv(media["av"], dst, opts, probed(media["av"])))
    info = ffprobe(dst)
    assert "webm" in info["format"]["format_name"]
    (video,), (audio,) = streams(info, "video"), streams(info, "audio")
    assert (video["codec_name"], video["width"], video["height"]) == ("vp9", 160, 120)
    assert (audio["codec_name"], audio["channels"]) == ("opus", 2)


def test_real_mp4_h265_hvc1_odd_width(media: dict[str, Path], tmp_path: Path) -> None:
    dst = tmp_path / "out.mp4"
    opts = parse_video_options({"codec": "h265", "width": 161})
    run(video_argv.build_video_argv(media["av"], dst, opts, probed(media["av"])))
    info = ffprobe(dst)
    (video,), (audio,) = streams(info, "video"), streams(info, "audio")
    assert (video["codec_name"], video["codec_tag_string"]) == ("hevc", "hvc1")
    assert (video["width"], video["height"], video["pix_fmt"]) == (162, 120, "yuv420p")
    assert (audio["codec_name"], audio["channels"]) == ("aac", 2)
    # +faststart: the moov box precedes mdat.
    head = dst.read_bytes()
    assert head.index(b"moov") < head.index(b"mdat")


def test_real_mute_fps_and_trim(media: dict[str, Path], tmp_path: Path) -> None:
    dst = tmp_path / "out.mp4"
    opts = parse_video_options({"mute": True, "fps": 10, "start": 0.2, "duration": 0.5})
    run(video_argv.build_video_argv(media["av"], dst, opts, probed(media["av"])))
    info = ffprobe(dst)
    assert streams(info, "audio") == []
    (video,) = streams(info, "video")
    assert video["avg_frame_rate"] == "10/1"
    assert float(info["format"]["duration"]) == pytest.approx(0.5, abs=0.1)


def test_real_rotated_input_comes_out_upright_without_rotation_tag(
    media: dict[str, Path], tmp_path: Path
) -> None:
    source = probed(media["rotated"])
    assert source.video is not None and source.video.rotation in (90, 270)
    dst = tmp_path / "out.mov"
    run(video_argv.build_video_argv(media["rotated"], dst, parse_video_options({"format": "mov"}), source))
    (video,) = streams(ffprobe(dst), "video")
    assert (video["width"], video["height"]) == (240, 320)
    assert "rotate" not in video.get("tags", {})
    assert not [s for s in video.get("side_data_list", []) if s.get("rotation")]


def test_real_av1_contain_without_audio_input(media: dict[str, Path], tmp_path: Path) -> None:
    dst = tmp_path / "out.mp4"
    opts = parse_video_options(
        {"codec": "av1", "width": 128, "height": 128, "fit": "contain", "background": "#ff0000"}
    )
    run(video_argv.build_video_argv(media["plain"], dst, opts, probed(media["plain"])))
    info = ffprobe(dst)
    (video,) = streams(info, "video")
    assert (video["codec_name"], video["width"], video["height"]) == ("av1", 128, 128)
    assert streams(info, "audio") == []


@pytest.mark.parametrize(
    ("fmt", "codec"),
    [
        ("mp3", "mp3"),
        ("aac", "aac"),
        ("ogg", "vorbis"),
        ("opus", "opus"),
        ("wav", "pcm_s16le"),
        ("flac", "flac"),
    ],
)
def test_real_audio_formats_downmix_surround(
    media: dict[str, Path], tmp_path: Path, fmt: str, codec: str
) -> None:
    dst = tmp_path / f"out{audio_argv.output_extension(fmt)}"
    run(
        audio_argv.build_audio_argv(
            media["surround"], dst, parse_audio_options({"format": fmt}), probed(media["surround"])
        )
    )
    (audio,) = streams(ffprobe(dst), "audio")
    assert (audio["codec_name"], audio["channels"]) == (codec, 2)


def test_real_audio_from_video_trimmed(media: dict[str, Path], tmp_path: Path) -> None:
    dst = tmp_path / "out.m4a"
    opts = parse_audio_options({"format": "aac", "start": 0.25, "end": 0.75})
    run(audio_argv.build_audio_argv(media["av"], dst, opts, probed(media["av"])))
    info = ffprobe(dst)
    assert streams(info, "video") == []
    assert float(info["format"]["duration"]) == pytest.approx(0.5, abs=0.1)
