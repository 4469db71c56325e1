"""``audio`` tasks end to end: every format's codec, quality/bitrate, trims, downmix, video inputs.

All tasks are POSTed at once by one module fixture and awaited together; each test downloads its
task's output and measures it with ffprobe.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import download, run_all
from tests.support import Corpus, Origin, ffprobe_json

# format -> (ffprobe codec_name, ffprobe format_name, MIME type)
FORMATS: dict[str, tuple[str, str, str]] = {
    "mp3": ("mp3", "mp3", "audio/mpeg"),
    "aac": ("aac", "mov,mp4,m4a,3gp,3g2,mj2", "audio/mp4"),
    "ogg": ("vorbis", "ogg", "audio/ogg"),
    "opus": ("opus", "ogg", "audio/ogg"),
    "wav": ("pcm_s16le", "wav", "audio/wav"),
    "flac": ("flac", "flac", "audio/flac"),
}

# name -> (input corpus field, options)
SPECS: dict[str, tuple[str, dict[str, Any]]] = {
    "default": ("audio_stereo", {}),
    **{f"to_{fmt}": ("audio_stereo", {"format": fmt}) for fmt in FORMATS},
    "mp3_very_low": ("audio_stereo", {"format": "mp3", "quality": "very_low"}),
    "mp3_very_high": ("audio_stereo", {"format": "mp3", "quality": "very_high"}),
    "aac_very_low": ("audio_stereo", {"format": "aac", "quality": "very_low"}),
    "aac_very_high": ("audio_stereo", {"format": "aac", "quality": "very_high"}),
    "mp3_bitrate": ("audio_stereo", {"format": "mp3", "bitrate": 64_000}),
    "wav_window": ("audio_stereo", {"format": "wav", "start": 0.5, "end": 2.0}),
    "mp3_window": ("audio_stereo", {"format": "mp3", "start": 1.0, "end": 2.5}),
    "wav_end_only": ("audio_stereo", {"format": "wav", "end": 1.25}),
    "surround": ("audio_51", {}),
    "surround_video": ("clip_51", {"format": "aac"}),
    "from_video": ("clip_av", {}),
    "silent_video": ("clip_silent", {}),
}


@pytest.fixture(scope="module")
def tasks(api: httpx.Client, origin: Origin, corpus: Corpus) -> dict[str, dict[str, Any]]:
    """Every task in SPECS, created up front and then awaited."""
    inputs = corpus.files()
    return run_all(
        api, "audio", {name: (origin.url(inputs[src].name), opts) for name, (src, opts) in SPECS.items()}
    )


def probe_output(api: httpx.Client, task: dict[str, Any], dest: Path) -> dict[str, Any]:
    """Download a succeeded task's only output, check ``filesize``, and return its ffprobe JSON."""
    assert task["status"] == "succeeded", task
    (entry,) = task["outputs"]
    path = download(api, entry["url"], dest)
    assert entry["kind"] == "source" and entry["filesize"] == path.stat().st_size
    return ffprobe_json(path)


def only_audio(info: dict[str, Any]) -> dict[str, Any]:
    """The output's single stream, which must be audio."""
    (stream,) = info["streams"]
    assert stream["codec_type"] == "audio"
    return stream


def duration(info: dict[str, Any]) -> float:
    return float(info["format"]["duration"])


@pytest.mark.parametrize(("name", "fmt"), [("default", "mp3"), *[(f"to_{fmt}", fmt) for fmt in FORMATS]])
def test_format_codec_and_container(
    api: httpx.Client, tasks: dict[str, dict[str, Any]], tmp_path: Path, name: str, fmt: str
) -> None:
    """Each format gets its codec and container; 3 s of stereo stays 3 s of stereo."""
    codec, container, mime = FORMATS[fmt]
    task = tasks[name]
    info = probe_output(api, task, tmp_path / "out")
    stream = only_audio(info)
    assert stream["codec_name"] == codec and stream["channels"] == 2
    assert info["format"]["format_name"] == container
    assert duration(info) == pytest.approx(3.0, abs=0.1)
    entry = task["outputs"][0]
    assert entry["type"] == mime and entry["codec"] == codec and entry["channels"] == 2
    assert entry["duration"] == pytest.approx(3.0, abs=0.1)
    assert "width" not in entry and "height" not in entry


@pytest.mark.parametrize(("fmt", "low", "high"), [("mp3", 96_000, 320_000), ("aac", 64_000, 256_000)])
def test_quality_sets_the_bitrate(
    api: httpx.Client, tasks: dict[str, dict[str, Any]], tmp_path: Path, fmt: str, low: int, high: int
) -> None:
    low_info = probe_output(api, tasks[f"{fmt}_very_low"], tmp_path / "low")
    high_info = probe_output(api, tasks[f"{fmt}_very_high"], tmp_path / "high")
    low_rate, high_rate = (int(only_audio(i)["bit_rate"]) for i in (low_info, high_info))
    assert low_rate < high_rate
    assert low_rate <= 1.1 * low and high_rate <= 1.1 * high, (low_rate, high_rate)
    if fmt == "mp3":  # libmp3lame -b:a is constant bitrate: exact
        assert (low_rate, high_rate) == (low, high)


def test_bitrate_option_sets_the_bitrate(
    api: httpx.Client, tasks: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    info = probe_output(api, tasks["mp3_bitrate"], tmp_path / "out.mp3")
    assert int(only_audio(info)["bit_rate"]) == 64_000


@pytest.mark.parametrize(
    ("name", "seconds", "tolerance"),
    [("wav_window", 1.5, 0.01), ("wav_end_only", 1.25, 0.01), ("mp3_window", 1.5, 0.06)],
)
def test_start_end_window(
    api: httpx.Client,
    tasks: dict[str, dict[str, Any]],
    tmp_path: Path,
    name: str,
    seconds: float,
    tolerance: float,
) -> None:
    info = probe_output(api, tasks[name], tmp_path / "out")
    assert duration(info) == pytest.approx(seconds, abs=tolerance)
    assert tasks[name]["outputs"][0]["duration"] == pytest.approx(seconds, abs=tolerance)


@pytest.mark.parametrize("name", ["surround", "surround_video"])
def test_surround_is_downmixed_to_stereo(
    api: httpx.Client, tasks: dict[str, dict[str, Any]], tmp_path: Path, name: str
) -> None:
    task = tasks[name]
    assert task["inputs"][0]["channels"] == 6
    assert only_audio(probe_output(api, task, tmp_path / "out"))["channels"] == 2
    assert task["outputs"][0]["channels"] == 2


def test_audio_from_a_video(api: httpx.Client, tasks: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    """The video's audio track alone (no video, no cover art), for its whole length."""
    task = tasks["from_video"]
    assert task["inputs"][0]["type"] == "video/mp4"
    info = probe_output(api, task, tmp_path / "out.mp3")
    assert only_audio(info)["codec_name"] == "mp3"
    assert duration(info) == pytest.approx(2.0, abs=0.1)
    assert task["outputs"][0]["type"] == "audio/mpeg"


def test_video_without_audio_fails(tasks: dict[str, dict[str, Any]]) -> None:
    task = tasks["silent_video"]
    assert task["status"] == "failed", task
    assert task["error"] == "the input has no audio stream"
    assert task["outputs"] == []
