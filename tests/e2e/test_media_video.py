"""``video`` tasks end to end: every option, measured on the downloaded output with ffprobe/Pillow.

All tasks are POSTed at once by one module fixture and awaited together, so the encodes overlap on
the stack's workers; each test then downloads and measures the output of its own task.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.conftest import download, run_all
from tests.support import Corpus, Origin, ffprobe_json, mp4_top_level_boxes
from tests.support.corpus import FFMPEG

FRAME = 1 / 25  # the corpus clips are 25 fps
RED, BLUE = (255, 0, 0), (0, 0, 255)
BITRATE_CAP = 300_000

# name -> (input: a corpus field, "halves" or "busy", options)
SPECS: dict[str, tuple[str, dict[str, Any]]] = {
    "default": ("clip_av", {}),
    "mp4": ("clip_av", {"format": "mp4"}),
    "webm": ("clip_av", {"format": "webm"}),
    "mov": ("clip_av", {"format": "mov"}),
    "h265": ("clip_av", {"codec": "h265", "width": 160}),
    "av1_webm": ("clip_av", {"format": "webm", "codec": "av1", "width": 160}),
    "av1_mp4": ("clip_av", {"format": "mp4", "codec": "av1", "width": 160}),
    "q_very_low": ("clip_av", {"quality": "very_low"}),
    "q_medium": ("clip_av", {"quality": "medium"}),
    "q_very_high": ("clip_av", {"quality": "very_high"}),
    "width_only": ("clip_av", {"width": 200}),
    "height_only": ("clip_av", {"height": 100}),
    "pct_width": ("clip_av", {"width": "50%"}),
    "pct_both": ("clip_av", {"width": "50%", "height": "25%"}),
    "contain": ("clip_av", {"width": 200, "height": 200, "fit": "contain"}),
    "contain_bg": ("clip_av", {"width": 200, "height": 200, "fit": "contain", "background": "#ff0000"}),
    "cover": ("clip_av", {"width": 200, "height": 200, "fit": "cover"}),
    "fill": ("clip_av", {"width": 200, "height": 100, "fit": "fill"}),
    "pos_left": ("halves", {"width": 100, "height": 100, "fit": "cover", "position": "left"}),
    "pos_right": ("halves", {"width": 100, "height": 100, "fit": "cover", "position": "right"}),
    "pos_center": ("halves", {"width": 100, "height": 100, "fit": "cover"}),
    "fps": ("clip_av", {"fps": 10}),
    "start_end": ("clip_av", {"start": 0.5, "end": 1.5}),
    "duration": ("clip_av", {"duration": 0.8}),
    "start_duration": ("clip_av", {"start": 1.2, "duration": 0.4}),
    "mute": ("clip_av", {"mute": True}),
    "bitrate_free": ("busy", {"quality": "very_high"}),
    "bitrate_cap": ("busy", {"quality": "very_high", "bitrate": BITRATE_CAP}),
    "odd": ("clip_odd", {}),
    "rotated": ("clip_rotated", {}),
    "silent": ("clip_silent", {}),
    "surround": ("clip_51", {}),
}


@pytest.fixture(scope="module")
def halves(corpus: Corpus) -> Path:
    """A 1 s 320x160 clip, left half pure red and right half pure blue, so crops are visible."""
    path = corpus.root / "halves.mp4"
    subprocess.run(
        [FFMPEG, "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", "color=c=red:s=160x160:r=25:d=1",
         "-f", "lavfi", "-i", "color=c=blue:s=160x160:r=25:d=1",
         "-filter_complex", "hstack", "-c:v", "libx264", "-preset", "veryfast", "-qp", "0",
         "-pix_fmt", "yuv444p", str(path)],
        check=True,
    )  # fmt: skip
    return path


@pytest.fixture(scope="module")
def busy(corpus: Corpus) -> Path:
    """A 6 s 320x240 clip full of noise: at very_high quality it needs far more than the bitrate cap."""
    path = corpus.root / "busy.mp4"
    subprocess.run(
        [FFMPEG, "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=6,noise=alls=30:allf=t",
         "-c:v", "libx264", "-preset", "veryfast", "-crf", "28", "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )  # fmt: skip
    return path


@pytest.fixture(scope="module")
def tasks(
    api: httpx.Client, origin: Origin, corpus: Corpus, halves: Path, busy: Path
) -> dict[str, dict[str, Any]]:
    """Every task in SPECS, created up front and then awaited."""
    inputs = {**corpus.files(), "halves": halves, "busy": busy}
    return run_all(
        api, "video", {name: (origin.url(inputs[src].name), opts) for name, (src, opts) in SPECS.items()}
    )


def fetch(api: httpx.Client, task: dict[str, Any], dest: Path) -> Path:
    """Download a succeeded task's only output, checking ``filesize`` against the bytes received."""
    assert task["status"] == "succeeded", task
    (entry,) = task["outputs"]
    path = download(api, entry["url"], dest)
    assert entry["filesize"] == path.stat().st_size
    return path


def streams(info: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [s for s in info["streams"] if s["codec_type"] == kind]


def video_stream(info: dict[str, Any]) -> dict[str, Any]:
    (video,) = streams(info, "video")
    return video


def probe_output(api: httpx.Client, task: dict[str, Any], dest: Path) -> dict[str, Any]:
    return ffprobe_json(fetch(api, task, dest))


def frame(path: Path, dest: Path, at: float = 0.5) -> Image.Image:
    """One decoded frame of ``path`` at ``at`` seconds, as RGB."""
    subprocess.run(
        [FFMPEG, "-hide_banner", "-loglevel", "error", "-y", "-ss", str(at), "-i", str(path),
         "-frames:v", "1", str(dest)],
        check=True,
    )  # fmt: skip
    with Image.open(dest) as image:
        return image.convert("RGB")


def near(pixel: Any, expected: tuple[int, int, int], tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel[:3], expected, strict=True))


def rate(value: str) -> float:
    num, _, den = value.partition("/")
    return float(num) / float(den or 1)


# --- formats and codecs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "mime", "format_name", "vcodec", "acodec"),
    [
        ("default", "video/mp4", "mov,mp4", "h264", "aac"),
        ("mp4", "video/mp4", "mov,mp4", "h264", "aac"),
        ("webm", "video/webm", "matroska,webm", "vp9", "opus"),
        ("mov", "video/quicktime", "mov,mp4", "h264", "aac"),
        ("h265", "video/mp4", "mov,mp4", "hevc", "aac"),
        ("av1_webm", "video/webm", "matroska,webm", "av1", "opus"),
        ("av1_mp4", "video/mp4", "mov,mp4", "av1", "aac"),
    ],
)
def test_format_and_codec(
    api: httpx.Client,
    tasks: dict[str, dict[str, Any]],
    tmp_path: Path,
    name: str,
    mime: str,
    format_name: str,
    vcodec: str,
    acodec: str,
) -> None:
    """Each format/codec gives the right container, video codec and default audio codec."""
    task = tasks[name]
    info = probe_output(api, task, tmp_path / "out")
    assert info["format"]["format_name"].startswith(format_name)
    assert video_stream(info)["codec_name"] == vcodec
    assert video_stream(info)["pix_fmt"] == "yuv420p"
    (audio,) = streams(info, "audio")
    assert audio["codec_name"] == acodec and audio["channels"] == 2
    entry = task["outputs"][0]
    assert entry["type"] == mime
    assert entry["codec"] == vcodec and entry["audio_codec"] == acodec
    assert entry["duration"] == pytest.approx(float(info["format"]["duration"]), abs=0.01)
    assert entry["duration"] == pytest.approx(2.0, abs=0.1)
    assert entry["fps"] == pytest.approx(25.0)


def test_h265_in_mp4_is_tagged_hvc1(
    api: httpx.Client, tasks: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """Apple players need the hvc1 sample entry, not hev1."""
    video = video_stream(probe_output(api, tasks["h265"], tmp_path / "out.mp4"))
    assert video["codec_tag_string"] == "hvc1"


@pytest.mark.parametrize("name", ["default", "mov", "h265", "av1_mp4"])
def test_mp4_and_mov_have_moov_before_mdat(
    api: httpx.Client, tasks: dict[str, dict[str, Any]], tmp_path: Path, name: str
) -> None:
    """Fast start: the index comes before the media data."""
    boxes = mp4_top_level_boxes(fetch(api, tasks[name], tmp_path / "out"))
    assert "moov" in boxes and "mdat" in boxes, boxes
    assert boxes.index("moov") < boxes.index("mdat"), boxes


def test_output_entry_describes_the_file(
    api: httpx.Client, tasks: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    task = tasks["default"]
    path = fetch(api, task, tmp_path / "out.mp4")
    info = ffprobe_json(path)
    (entry,) = task["outputs"]
    assert entry["kind"] == "source" and entry["type"] == "video/mp4"
    assert (entry["width"], entry["height"]) == (320, 240)
    assert entry["filesize"] == path.stat().st_size
    assert entry["codec"] == "h264" and entry["audio_codec"] == "aac" and entry["channels"] == 2
    assert entry["duration"] == pytest.approx(float(info["format"]["duration"]), abs=0.01)
    assert entry["duration"] == pytest.approx(2.0, abs=0.1)
    assert entry["url"].startswith("http")


def test_inputs_hold_the_probed_input(tasks: dict[str, dict[str, Any]], corpus: Corpus) -> None:
    (source,) = tasks["default"]["inputs"]
    assert source["kind"] == "source" and source["type"] == "video/mp4"
    assert (source["width"], source["height"]) == (320, 240)
    assert source["filesize"] == corpus.clip_av.stat().st_size
    assert source["codec"] == "h264" and source["audio_codec"] == "aac" and source["channels"] == 2
    assert source["duration"] == pytest.approx(2.0, abs=0.1)
    assert source["fps"] == pytest.approx(25.0)


# --- quality and bitrate ---------------------------------------------------------------------------


def test_quality_levels_order_file_sizes(tasks: dict[str, dict[str, Any]]) -> None:
    """Higher quality levels give bigger files (same input, same size)."""
    sizes = [tasks[name]["outputs"][0]["filesize"] for name in ("q_very_low", "q_medium", "q_very_high")]
    assert sizes[0] < sizes[1] < sizes[2], sizes
    assert sizes[2] > 1.5 * sizes[0], sizes


def test_bitrate_caps_the_video_stream(
    api: httpx.Client, tasks: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """A noisy clip at very_high quality: uncapped it runs at megabits, capped it stays near the cap."""
    free = video_stream(probe_output(api, tasks["bitrate_free"], tmp_path / "free.mp4"))
    assert int(free["bit_rate"]) > 4 * BITRATE_CAP, free["bit_rate"]  # the cap has work to do
    capped = video_stream(probe_output(api, tasks["bitrate_cap"], tmp_path / "capped.mp4"))
    assert int(capped["bit_rate"]) <= 1.5 * BITRATE_CAP, capped["bit_rate"]


# --- size and fit -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("width_only", (200, 150)),
        ("height_only", (134, 100)),  # 133.3 rounded to even
        ("pct_width", (160, 120)),
        ("pct_both", (160, 60)),
        ("contain", (200, 200)),
        ("contain_bg", (200, 200)),
        ("cover", (200, 200)),
        ("fill", (200, 100)),
        ("pos_left", (100, 100)),
        ("odd", (322, 242)),
        ("rotated", (180, 320)),
    ],
)
def test_output_size(
    api: httpx.Client, tasks: dict[str, dict[str, Any]], tmp_path: Path, name: str, size: tuple[int, int]
) -> None:
    """The measured size matches the options, is even, has square pixels and matches the entry."""
    task = tasks[name]
    video = video_stream(probe_output(api, task, tmp_path / "out.mp4"))
    assert (video["width"], video["height"]) == size
    assert video["width"] % 2 == 0 and video["height"] % 2 == 0
    assert video.get("sample_aspect_ratio", "1:1") in ("1:1", "0:1")
    assert (task["outputs"][0]["width"], task["outputs"][0]["height"]) == size


def test_contain_pads_with_the_background(
    api: httpx.Client, tasks: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """320x240 into 200x200: the picture is 200x150, bands of 24-26 px above and below."""
    red = frame(fetch(api, tasks["contain_bg"], tmp_path / "bg.mp4"), tmp_path / "bg.png")
    black = frame(fetch(api, tasks["contain"], tmp_path / "plain.mp4"), tmp_path / "plain.png")
    for x in (5, 100, 195):
        for y in (5, 194):
            assert near(red.getpixel((x, y)), RED), (x, y, red.getpixel((x, y)))
            assert near(black.getpixel((x, y)), (0, 0, 0)), (x, y, black.getpixel((x, y)))
    # Inside the picture the content shows, not the background.
    row = [red.getpixel((x, 100)) for x in range(0, 200, 10)]
    assert not all(near(p, RED) for p in row)


@pytest.mark.parametrize(
    ("name", "left", "right"),
    [("pos_left", RED, RED), ("pos_right", BLUE, BLUE), ("pos_center", RED, BLUE)],
)
def test_cover_crops_at_the_position(
    api: httpx.Client,
    tasks: dict[str, dict[str, Any]],
    tmp_path: Path,
    name: str,
    left: tuple[int, int, int],
    right: tuple[int, int, int],
) -> None:
    """320x160 red|blue covered into 100x100: the crop window follows ``position``."""
    image = frame(fetch(api, tasks[name], tmp_path / "out.mp4"), tmp_path / "out.png")
    assert near(image.getpixel((10, 50)), left), image.getpixel((10, 50))
    assert near(image.getpixel((89, 50)), right), image.getpixel((89, 50))


# --- time ----------------------------------------------------------------------------------------


def test_fps_sets_the_frame_rate(api: httpx.Client, tasks: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    video = video_stream(probe_output(api, tasks["fps"], tmp_path / "out.mp4"))
    assert rate(video["r_frame_rate"]) == pytest.approx(10.0)
    assert rate(video["avg_frame_rate"]) == pytest.approx(10.0, rel=0.05)
    assert int(video["nb_frames"]) in (20, 21)
    assert tasks["fps"]["outputs"][0]["fps"] == pytest.approx(10.0, rel=0.05)


@pytest.mark.parametrize(
    ("name", "seconds"), [("start_end", 1.0), ("duration", 0.8), ("start_duration", 0.4)]
)
def test_trim_window_duration(
    api: httpx.Client, tasks: dict[str, dict[str, Any]], tmp_path: Path, name: str, seconds: float
) -> None:
    """The video stream lasts the requested window, within one frame; audio follows."""
    info = probe_output(api, tasks[name], tmp_path / "out.mp4")
    assert float(video_stream(info)["duration"]) == pytest.approx(seconds, abs=FRAME + 0.001)
    (audio,) = streams(info, "audio")
    assert float(audio["duration"]) == pytest.approx(seconds, abs=0.05)
    assert tasks[name]["outputs"][0]["duration"] == pytest.approx(seconds, abs=0.05)


def test_start_skips_the_beginning(
    api: httpx.Client, tasks: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """The first frame of a clip cut at 1.2 s is the source's frame at 1.2 s, not its first frame."""
    out = frame(fetch(api, tasks["start_duration"], tmp_path / "cut.mp4"), tmp_path / "cut.png", at=0)
    source = fetch(api, tasks["default"], tmp_path / "full.mp4")
    at_start = frame(source, tmp_path / "s0.png", at=0)
    at_cut = frame(source, tmp_path / "s12.png", at=1.2)
    assert diff(out, at_cut) < diff(out, at_start) / 3


def diff(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference of two same-size RGB images."""
    pa, pb = a.tobytes(), b.tobytes()
    return sum(abs(x - y) for x, y in zip(pa, pb, strict=True)) / len(pa)


# --- streams -------------------------------------------------------------------------------------


def test_mute_drops_audio(api: httpx.Client, tasks: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    info = probe_output(api, tasks["mute"], tmp_path / "out.mp4")
    assert streams(info, "audio") == [] and len(streams(info, "video")) == 1
    assert "audio_codec" not in tasks["mute"]["outputs"][0]


def test_input_without_audio_gives_video_only(
    api: httpx.Client, tasks: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    info = probe_output(api, tasks["silent"], tmp_path / "out.mp4")
    assert streams(info, "audio") == []
    assert video_stream(info)["codec_name"] == "h264"


def test_surround_audio_is_downmixed_to_stereo(
    api: httpx.Client, tasks: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    assert tasks["surround"]["inputs"][0]["channels"] == 6
    (audio,) = streams(probe_output(api, tasks["surround"], tmp_path / "out.mp4"), "audio")
    assert audio["channels"] == 2
    assert tasks["surround"]["outputs"][0]["channels"] == 2


def test_rotated_clip_comes_out_upright(
    api: httpx.Client, tasks: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """Stored 320x180 with a 90° display matrix: the output is stored 180x320 and carries no rotation."""
    task = tasks["rotated"]
    assert (task["inputs"][0]["width"], task["inputs"][0]["height"]) == (180, 320)
    video = video_stream(probe_output(api, task, tmp_path / "out.mp4"))
    assert (video["width"], video["height"]) == (180, 320)
    assert "rotate" not in video.get("tags", {})
    assert not any("rotation" in side for side in video.get("side_data_list", [])), video
