"""Outputs are bounded by the input pixel limit (``TRANSMUTE_MAX_PIXELS``) for every kind that scales.

A percentage size can ask for far more than the input: an 11 KB 1638x1638 PNG at ``"1000%"`` once
became a 268-megapixel output that took media_service from 91 MB to over 2 GB and was reported as
0x0. Each refused task here must fail with the sentence naming the limit, before any encode; the
legitimate upscale must succeed and report the size it really wrote.

The session stack keeps the default limit (``tests/conftest.py`` does not set it), 64,000,000
pixels; the inputs are small and the refused tasks fail at layout time, so the module is cheap.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from stack import Stack
from taskkit.media import DEFAULT_MAX_PIXELS
from tests.conftest import download, run_all
from tests.e2e.test_bad_inputs import assert_one_sentence
from tests.support import Corpus, Origin
from tests.support.corpus import FFMPEG

RED, GREEN = (255, 0, 0), (0, 255, 0)

# name -> (kind, input: a file made by the ``inputs`` fixture, options)
SPECS: dict[str, tuple[str, str, dict[str, Any]]] = {
    # 1000x1000 at 1000% is 10000x10000: under 16384 a side, 100 Mpx in all.
    "image_pct": ("image", "square", {"width": "1000%"}),
    "image_pct_jpeg": ("image", "square", {"width": "1000%", "height": "1000%", "format": "jpeg"}),
    # A frame taken from a 1280x720 video at 1000% is 12800x7200, 92 Mpx.
    "frame_pct": ("image", "hd", {"width": "1000%"}),
    "video_pct": ("video", "hd", {"width": "1000%"}),
    # adaptive_video never makes a rung taller than the input, but 16000 wide by 4096 is 65.5 Mpx.
    "adaptive_top": ("adaptive_video", "tall", {"width": 16000, "height": "100%"}),
    # The top rung itself is 12800x720, but cover first scales the picture to 12800x7200.
    "adaptive_cover": ("adaptive_video", "hd", {"width": "1000%", "height": "100%", "fit": "cover"}),
    # Legitimate upscales.
    "image_upscale": ("image", "small", {"width": "200%"}),
    "image_upscale_cover": ("image", "small", {"width": "200%", "height": "300%", "fit": "cover"}),
}

# name -> (the output size the options ask for, the size that is over the limit)
REFUSED: dict[str, tuple[str, str]] = {
    "image_pct": ("the output would be", "10000×10000 pixels (100,000,000)"),
    "image_pct_jpeg": ("the output would be", "10000×10000 pixels (100,000,000)"),
    "frame_pct": ("the output would be", "12800×7200 pixels (92,160,000)"),
    "video_pct": ("the output would be", "12800×7200 pixels (92,160,000)"),
    "adaptive_top": ("the output would be", "16000×4096 pixels (65,536,000)"),
    "adaptive_cover": ("with fit cover the picture would be scaled to", "12800×7200 pixels (92,160,000)"),
}


def ffmpeg(*args: str) -> None:
    subprocess.run(
        [FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args], check=True, timeout=120
    )


def clip(path: Path, size: str) -> Path:
    """Two frames of video, no audio: enough to be probed and refused."""
    ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=5:duration=0.4",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path),
    )  # fmt: skip
    return path


def two_tone(path: Path, size: tuple[int, int]) -> Path:
    """Left half red, right half green (a few KB of PNG)."""
    image = Image.new("RGB", size, RED)
    image.paste(GREEN, (size[0] // 2, 0, size[0], size[1]))
    image.save(path)
    return path


@pytest.fixture(scope="module")
def limit(stack: Stack) -> int:
    """The stack's pixel limit: the default unless the session sets one."""
    return int(stack.config.env.get("TRANSMUTE_MAX_PIXELS", DEFAULT_MAX_PIXELS))


@pytest.fixture(scope="module")
def inputs(corpus: Corpus) -> dict[str, Path]:
    root = corpus.root
    return {
        "square": two_tone(root / "limits_square.png", (1000, 1000)),
        "small": two_tone(root / "limits_small.png", (300, 200)),
        "hd": clip(root / "limits_hd.mp4", "1280x720"),
        "tall": clip(root / "limits_tall.mp4", "640x4096"),
    }


@pytest.fixture(scope="module")
def tasks(api: httpx.Client, origin: Origin, inputs: dict[str, Path]) -> dict[str, dict[str, Any]]:
    """Every task in SPECS, created up front and then awaited, one kind at a time."""
    done: dict[str, dict[str, Any]] = {}
    for kind in ("image", "video", "adaptive_video"):
        specs = {
            name: (origin.url(inputs[source].name), options)
            for name, (task_kind, source, options) in SPECS.items()
            if task_kind == kind
        }
        done.update(run_all(api, kind, specs))
    return done


@pytest.mark.parametrize("name", list(REFUSED))
def test_an_output_over_the_pixel_limit_fails_naming_the_limit(
    tasks: dict[str, dict[str, Any]], limit: int, name: str
) -> None:
    task = tasks[name]
    what, size = REFUSED[name]
    assert task["status"] == "failed", task
    assert_one_sentence(task["error"])
    assert task["error"].startswith(f"{what} {size}"), task["error"]
    assert task["error"].endswith(f"over the limit of {limit:,} pixels"), task["error"]
    assert task["outputs"] == []


def test_the_refused_inputs_are_themselves_within_the_limit(
    tasks: dict[str, dict[str, Any]], limit: int
) -> None:
    """It is the output that is refused: each input was fetched, probed and is under the limit."""
    for name in REFUSED:
        (entry,) = tasks[name]["inputs"]
        assert 0 < entry["width"] * entry["height"] <= limit, (name, entry)


@pytest.mark.parametrize(
    ("name", "size"), [("image_upscale", (600, 400)), ("image_upscale_cover", (600, 600))]
)
def test_a_legitimate_upscale_reports_its_real_size(
    api: httpx.Client, tasks: dict[str, dict[str, Any]], tmp_path: Path, name: str, size: tuple[int, int]
) -> None:
    task = tasks[name]
    assert task["status"] == "succeeded", task
    (entry,) = task["outputs"]
    assert (entry["width"], entry["height"]) == size, entry
    path = download(api, entry["url"], tmp_path / "out.png")
    assert entry["filesize"] == path.stat().st_size
    with Image.open(path) as image:
        assert (image.format, image.size) == ("PNG", size)
        rgb = image.convert("RGB")
        assert rgb.getpixel((5, size[1] // 2)) == RED
        assert rgb.getpixel((size[0] - 5, size[1] // 2)) == GREEN
