"""``image`` tasks end to end: formats, quality, size/fit, EXIF, alpha, frames from video.

All tasks are POSTed at once by one module fixture and awaited together; each test downloads its
task's output and measures it with Pillow.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.conftest import download, run_all, run_task
from tests.support import Corpus, Origin
from tests.support.corpus import FFMPEG

RED, GREEN, BLUE, BLACK = (255, 0, 0), (0, 255, 0), (0, 0, 255), (0, 0, 0)
PNG_RED = (220, 40, 40)  # the opaque left half of png_alpha
PILLOW_FORMAT = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "avif": "AVIF", "gif": "GIF"}
MIME = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "avif": "image/avif",
    "gif": "image/gif",
}
FORMATS = tuple(PILLOW_FORMAT)
CONTAIN = {"width": 100, "height": 100, "fit": "contain"}
COVER = {"width": 100, "height": 100, "fit": "cover"}

# name -> (input: a corpus field or "noise", options)
SPECS: dict[str, tuple[str, dict[str, Any]]] = {
    "png_default": ("png_alpha", {}),
    "jpeg_default": ("jpeg_exif_rotated", {}),
    "bmp_default": ("bmp_image", {}),
    **{f"to_{fmt}": ("png_small", {"format": fmt}) for fmt in FORMATS},
    "to_jpg": ("png_small", {"format": "jpg"}),
    **{
        f"q_{fmt}_{level}": ("noise", {"format": fmt, "quality": level})
        for fmt in ("jpeg", "webp", "avif")
        for level in ("very_low", "very_high")
    },
    "width_only": ("png_alpha", {"width": 50}),
    "height_only": ("png_alpha", {"height": 50}),
    "pct_width": ("png_alpha", {"width": "50%"}),
    "pct_both": ("png_alpha", {"width": "25%", "height": "50%"}),
    "contain": ("png_alpha", CONTAIN),
    "contain_bg": ("png_alpha", {**CONTAIN, "background": "#00ff00"}),
    "contain_bg_jpeg": ("png_alpha", {**CONTAIN, "background": "#0000ff", "format": "jpeg"}),
    "cover": ("png_alpha", COVER),
    "cover_left": ("png_alpha", {**COVER, "position": "left"}),
    "cover_right": ("png_alpha", {**COVER, "position": "right"}),
    "fill": ("png_alpha", {"width": 50, "height": 80, "fit": "fill"}),
    "alpha_to_jpeg": ("png_alpha", {"format": "jpeg"}),
    "frame_default": ("clip_av", {"start": 1.0}),
    **{f"frame_{fmt}": ("clip_av", {"format": fmt, "width": 160}) for fmt in FORMATS},
    "frame_contain": ("clip_av", {"width": 200, "height": 200, "fit": "contain", "background": "#ff0000"}),
    "frame_rotated": ("clip_rotated", {"format": "png"}),
}


@pytest.fixture(scope="module")
def noise(corpus: Corpus) -> Path:
    """A 160x120 RGB noise PNG: lossy encoders need very different sizes at different levels."""
    path = corpus.root / "noise.png"
    channels = [Image.effect_noise((160, 120), sigma) for sigma in (60, 70, 80)]
    Image.merge("RGB", channels).save(path)
    return path


@pytest.fixture(scope="module")
def tasks(api: httpx.Client, origin: Origin, corpus: Corpus, noise: Path) -> dict[str, dict[str, Any]]:
    """Every task in SPECS, created up front and then awaited."""
    inputs = {**corpus.files(), "noise": noise}
    return run_all(
        api, "image", {name: (origin.url(inputs[src].name), opts) for name, (src, opts) in SPECS.items()}
    )


def open_output(api: httpx.Client, task: dict[str, Any], dest: Path) -> Image.Image:
    """Download a succeeded task's only output, check its entry against the file, and open it."""
    assert task["status"] == "succeeded", task
    (entry,) = task["outputs"]
    path = download(api, entry["url"], dest)
    assert entry["kind"] == "source"
    assert entry["filesize"] == path.stat().st_size
    image = Image.open(path)
    image.load()
    assert (entry["width"], entry["height"]) == image.size
    return image


def near(pixel: Any, expected: tuple[int, ...], tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=False))


def diff(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference of two same-size images, compared as RGB."""
    pa, pb = a.convert("RGB").tobytes(), b.convert("RGB").tobytes()
    return sum(abs(x - y) for x, y in zip(pa, pb, strict=True)) / len(pa)


# --- formats -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt", "size"),
    [
        ("png_default", "png", (200, 100)),
        ("jpeg_default", "jpeg", (100, 200)),
        ("bmp_default", "png", (48, 32)),
        *[(f"to_{fmt}", fmt, (64, 64)) for fmt in FORMATS],
        ("to_jpg", "jpeg", (64, 64)),
    ],
)
def test_output_format(
    api: httpx.Client,
    tasks: dict[str, dict[str, Any]],
    tmp_path: Path,
    name: str,
    fmt: str,
    size: tuple[int, int],
) -> None:
    """The format option, else the input's format (PNG for BMP), is what the file really is."""
    task = tasks[name]
    image = open_output(api, task, tmp_path / "out")
    assert image.format == PILLOW_FORMAT[fmt]
    assert image.size == size
    assert task["outputs"][0]["type"] == MIME[fmt]


@pytest.mark.parametrize("fmt", ["webp", "avif", "gif"])
def test_webp_avif_gif_inputs_keep_their_format(
    api: httpx.Client, tasks: dict[str, dict[str, Any]], tmp_path: Path, fmt: str
) -> None:
    """Fed back as inputs, our own webp/avif/gif outputs are images whose format is the default."""
    source = tasks[f"to_{fmt}"]
    assert source["status"] == "succeeded", source
    task = run_task(api, "image", source["outputs"][0]["url"], width=32)
    assert task["inputs"][0]["type"] == MIME[fmt], task["inputs"]
    image = open_output(api, task, tmp_path / "out")
    assert image.format == PILLOW_FORMAT[fmt] and image.size == (32, 32)
    assert task["outputs"][0]["type"] == MIME[fmt]


def test_png_alpha_survives_png(api: httpx.Client, tasks: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    image = open_output(api, tasks["png_default"], tmp_path / "out.png").convert("RGBA")
    assert image.getpixel((50, 50)) == (*PNG_RED, 255)
    assert image.getpixel((190, 5))[3] == 0


def test_png_alpha_to_jpeg_is_flattened_on_black(
    api: httpx.Client, tasks: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    image = open_output(api, tasks["alpha_to_jpeg"], tmp_path / "out.jpg")
    assert image.format == "JPEG" and image.mode == "RGB" and image.size == (200, 100)
    assert near(image.getpixel((50, 50)), PNG_RED, 20)
    assert near(image.getpixel((190, 5)), BLACK, 20)


def test_exif_rotated_jpeg_comes_out_upright_without_exif(
    api: httpx.Client, tasks: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """Stored 200x100 with Orientation 6: displayed 100x200 with the red block top right."""
    image = open_output(api, tasks["jpeg_default"], tmp_path / "out.jpg")
    assert image.size == (100, 200)
    assert len(image.getexif()) == 0 and "exif" not in image.info
    assert near(image.getpixel((75, 25)), (220, 30, 30))
    assert near(image.getpixel((25, 175)), (30, 30, 220))
    assert near(image.getpixel((25, 25)), (240, 240, 240))


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "avif"])
def test_quality_changes_file_size(tasks: dict[str, dict[str, Any]], fmt: str) -> None:
    low, high = (tasks[f"q_{fmt}_{level}"] for level in ("very_low", "very_high"))
    assert low["status"] == high["status"] == "succeeded", (low, high)
    low_size, high_size = low["outputs"][0]["filesize"], high["outputs"][0]["filesize"]
    assert high_size > 1.5 * low_size, (low_size, high_size)


# --- size and fit --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("width_only", (50, 25)),
        ("height_only", (100, 50)),
        ("pct_width", (100, 50)),
        ("pct_both", (50, 50)),
        ("contain", (100, 100)),
        ("cover", (100, 100)),
        ("fill", (50, 80)),
    ],
)
def test_output_size(
    api: httpx.Client, tasks: dict[str, dict[str, Any]], tmp_path: Path, name: str, size: tuple[int, int]
) -> None:
    assert open_output(api, tasks[name], tmp_path / "out.png").size == size


def test_contain_pads_transparent_or_with_background(
    api: httpx.Client, tasks: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """200x100 into 100x100: the picture is 100x50 at y=25; the bands are the background."""
    clear = open_output(api, tasks["contain"], tmp_path / "clear.png").convert("RGBA")
    green = open_output(api, tasks["contain_bg"], tmp_path / "green.png").convert("RGBA")
    blue = open_output(api, tasks["contain_bg_jpeg"], tmp_path / "blue.jpg")
    assert blue.format == "JPEG"
    for xy in ((50, 5), (50, 94)):
        assert clear.getpixel(xy)[3] == 0
        assert green.getpixel(xy) == (*GREEN, 255)
        assert near(blue.getpixel(xy), BLUE, 30)
    for image in (clear, green, blue.convert("RGBA")):
        assert near(image.getpixel((25, 50)), (*PNG_RED, 255), 20)


@pytest.mark.parametrize(
    ("name", "left_opaque", "right_opaque"),
    [("cover", True, False), ("cover_left", True, True), ("cover_right", False, False)],
)
def test_cover_crops_at_the_position(
    api: httpx.Client,
    tasks: dict[str, dict[str, Any]],
    tmp_path: Path,
    name: str,
    left_opaque: bool,
    right_opaque: bool,
) -> None:
    """200x100 (opaque red left half) covered into 100x100: the 100 px window follows ``position``."""
    image = open_output(api, tasks[name], tmp_path / "out.png").convert("RGBA")
    left, right = image.getpixel((10, 50)), image.getpixel((90, 50))
    assert (left == (*PNG_RED, 255)) is left_opaque, left
    assert (right == (*PNG_RED, 255)) is right_opaque, right


# --- frames from video ---------------------------------------------------------------------------


def reference_frame(source: Path, at: float, dest: Path) -> Image.Image:
    subprocess.run(
        [FFMPEG, "-hide_banner", "-loglevel", "error", "-y", "-ss", str(at), "-i", str(source),
         "-frames:v", "1", str(dest)],
        check=True,
    )  # fmt: skip
    with Image.open(dest) as image:
        return image.convert("RGB")


def test_frame_at_start_defaults_to_jpeg(
    api: httpx.Client, tasks: dict[str, dict[str, Any]], corpus: Corpus, tmp_path: Path
) -> None:
    """``start: 1.0`` gives the source's frame at 1 s (not its first frame), as a JPEG."""
    task = tasks["frame_default"]
    image = open_output(api, task, tmp_path / "frame.jpg")
    assert image.format == "JPEG" and image.size == (320, 240)
    assert task["outputs"][0]["type"] == "image/jpeg"
    at_one = reference_frame(corpus.clip_av, 1.0, tmp_path / "ref1.png")
    at_zero = reference_frame(corpus.clip_av, 0.0, tmp_path / "ref0.png")
    assert diff(image, at_one) < diff(image, at_zero) / 3


@pytest.mark.parametrize("fmt", FORMATS)
def test_frame_formats(api: httpx.Client, tasks: dict[str, dict[str, Any]], tmp_path: Path, fmt: str) -> None:
    task = tasks[f"frame_{fmt}"]
    image = open_output(api, task, tmp_path / "frame")
    assert image.format == PILLOW_FORMAT[fmt] and image.size == (160, 120)
    assert task["outputs"][0]["type"] == MIME[fmt]


def test_frame_contain_pads_with_background(
    api: httpx.Client, tasks: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    image = open_output(api, tasks["frame_contain"], tmp_path / "frame.jpg").convert("RGB")
    assert image.size == (200, 200)
    for xy in ((5, 5), (100, 10), (195, 194)):
        assert near(image.getpixel(xy), RED), (xy, image.getpixel(xy))


def test_frame_of_rotated_clip_is_upright(
    api: httpx.Client, tasks: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    assert open_output(api, tasks["frame_rotated"], tmp_path / "frame.png").size == (180, 320)
