"""Probing real files: Pillow for still images, libavformat (PyAV) for the rest."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from PIL import Image

from taskkit.errors import InputError
from taskkit.media import probe
from taskkit.media.probe import probe_still
from tests.support import Corpus, build_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return build_corpus(tmp_path_factory.mktemp("probe"))


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


async def test_video_with_audio(corpus: Corpus) -> None:
    result = await probe(corpus.clip_av)
    assert result.mime_type == "video/mp4" and not result.is_image and result.duration == 2.0
    assert result.video is not None and (result.video.codec, result.video.width, result.video.fps) == (
        "h264",
        320,
        25.0,
    )
    assert result.audio is not None and (result.audio.codec, result.audio.channels) == ("aac", 2)
    assert result.size == corpus.clip_av.stat().st_size


async def test_rotation_swaps_the_display_size(corpus: Corpus) -> None:
    result = await probe(corpus.clip_rotated)
    assert result.video is not None and result.video.rotation in (90, 270)
    assert (result.video.display_width, result.video.display_height) == (180, 320)


async def test_audio_only_files(corpus: Corpus, tmp_path: Path) -> None:
    mp3 = await probe(corpus.audio_stereo)
    assert mp3.mime_type == "audio/mpeg" and mp3.video is None and mp3.audio is not None
    assert mp3.audio.codec == "mp3"
    m4a = tmp_path / "a.m4a"
    ffmpeg("-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac", str(m4a))
    assert (await probe(m4a)).mime_type == "audio/mp4"


async def test_cover_art_is_not_a_video(corpus: Corpus, tmp_path: Path) -> None:
    with_cover = tmp_path / "cover.mp3"
    ffmpeg("-i", str(corpus.audio_stereo), "-i", str(corpus.png_small), "-map", "0:a", "-map", "1:v",
           "-c:a", "copy", "-c:v", "png", "-disposition:v", "attached_pic", str(with_cover))  # fmt: skip
    result = await probe(with_cover)
    assert result.video is None and result.mime_type == "audio/mpeg"


async def test_quicktime_and_avif_are_told_apart_from_mp4(corpus: Corpus, tmp_path: Path) -> None:
    mov = tmp_path / "a.mov"
    ffmpeg("-i", str(corpus.clip_av), "-c", "copy", str(mov))
    assert (await probe(mov)).mime_type == "video/quicktime"
    avif = tmp_path / "a.avif"
    Image.new("RGB", (40, 30), "red").save(avif)
    result = await probe(avif)
    assert result.is_image and result.mime_type == "image/avif" and result.duration is None


async def test_unreadable_inputs_are_input_errors(corpus: Corpus) -> None:
    for path in (corpus.truncated_mp4, corpus.html_page):
        with pytest.raises(InputError, match="not a media file that can be read"):
            await probe(path)


def test_still_images_are_described_from_their_header(tmp_path: Path) -> None:
    png = tmp_path / "a.png"
    Image.new("RGBA", (40, 30)).save(png)
    result = probe_still(png)
    assert result is not None and result.is_image and result.mime_type == "image/png"
    assert result.video is not None and (result.video.width, result.video.height) == (40, 30)
    assert result.size == png.stat().st_size
    text = tmp_path / "a.txt"
    text.write_text("<html></html>")
    assert probe_still(text) is None


def test_inputs_over_the_duration_or_pixel_limit_are_refused(corpus: Corpus) -> None:
    from taskkit.config import Settings
    from taskkit.media import ProbeResult
    from taskkit.media.probe import AudioStream, VideoStream
    from taskkit.runtime.worker import check_limits

    long_audio = ProbeResult(
        format_name="mp3", mime_type="audio/mpeg", duration=7200.0, size=1, audio=AudioStream("mp3", 2, 44100)
    )
    with pytest.raises(InputError, match="7200 seconds long, over the limit of 3600 seconds"):
        check_limits(long_audio, Settings(max_duration_seconds=3600))
    huge = ProbeResult(
        format_name="png_pipe",
        mime_type="image/png",
        duration=None,
        size=1,
        video=VideoStream("png", 10_000, 10_000, None, 0),
        is_image=True,
    )
    with pytest.raises(InputError, match="10000x10000 pixels, over the limit of 64000000 pixels"):
        check_limits(huge, Settings())
    check_limits(long_audio, Settings())  # within the default 4 h
