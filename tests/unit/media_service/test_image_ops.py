"""The image kind: Pillow transforms on real files, and one-frame ffmpeg argv (built and run)."""

from __future__ import annotations

import asyncio
import io
import struct
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from PIL import Image, ImageCms
from transmute.tasks.v1 import tasks_pb2

from media_service import handlers, image_ops
from media_service.options import parse_image_options
from taskkit.errors import InputError
from taskkit.media import ProbeResult, probe
from taskkit.media.probe import VideoStream

MAX_PIXELS = 50_000_000
ORIENTATION = 0x0112


def transform(
    src: Path, dst: Path, raw: dict[str, Any], *, max_pixels: int = MAX_PIXELS
) -> image_ops.ImageInfo:
    return image_ops.transform_image(src, dst, parse_image_options(raw), max_pixels=max_pixels)


def two_tone(path: Path, *, size: tuple[int, int] = (40, 20), fmt: str = "JPEG", **save: Any) -> Path:
    """Left half red, right half green: shows which way the picture ended up."""
    image = Image.new("RGB", size, (255, 0, 0))
    image.paste((0, 255, 0), (size[0] // 2, 0, size[0], size[1]))
    image.save(path, format=fmt, **save)
    return path


def alpha_at(image: Image.Image, xy: tuple[int, int]) -> int:
    pixel = image.getpixel(xy)
    assert isinstance(pixel, tuple)
    return pixel[3]


def near(pixel: Any, expected: tuple[int, ...], tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=True))


# --- transform_image --------------------------------------------------------------------------


def test_exif_rotated_jpeg_becomes_upright_and_loses_exif(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[ORIENTATION] = 6  # stored landscape, displayed rotated 90° clockwise
    exif[0x010F] = "PhoneMaker"
    src = two_tone(tmp_path / "in.jpg", exif=exif.tobytes())
    info = transform(src, tmp_path / "out", {})
    assert info == image_ops.ImageInfo(20, 40, "jpeg", "image/jpeg")
    with Image.open(tmp_path / "out") as out:
        assert out.format == "JPEG" and out.size == (20, 40)
        assert dict(out.getexif()) == {}
        # Rotated clockwise: the red left half is now on top.
        assert near(out.convert("RGB").getpixel((10, 5)), (255, 0, 0))
        assert near(out.convert("RGB").getpixel((10, 35)), (0, 255, 0))


def test_exif_rotation_applies_before_resizing(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[ORIENTATION] = 8
    src = two_tone(tmp_path / "in.jpg", size=(80, 40), exif=exif.tobytes())
    assert transform(src, tmp_path / "out", {"width": 20}).height == 40


def test_png_alpha_to_jpeg_is_flattened_on_black(tmp_path: Path) -> None:
    src = tmp_path / "in.png"
    image = Image.new("RGBA", (20, 20), (0, 0, 0, 0))
    image.paste((0, 0, 255, 255), (0, 0, 10, 20))
    image.save(src)
    info = transform(src, tmp_path / "out", {"format": "jpg"})
    assert (info.format, info.mime) == ("jpeg", "image/jpeg")
    with Image.open(tmp_path / "out") as out:
        assert out.mode == "RGB"
        assert near(out.getpixel((3, 10)), (0, 0, 255))
        assert near(out.getpixel((16, 10)), (0, 0, 0))


def test_avif_output_opens(tmp_path: Path) -> None:
    src = two_tone(tmp_path / "in.png", fmt="PNG")
    info = transform(src, tmp_path / "out", {"format": "avif", "width": 20, "quality": "high"})
    assert info == image_ops.ImageInfo(20, 10, "avif", "image/avif")
    with Image.open(tmp_path / "out") as out:
        assert (out.format, out.size) == ("AVIF", (20, 10))


@pytest.mark.parametrize(("fmt", "pillow"), [("webp", "WEBP"), ("png", "PNG"), ("gif", "GIF")])
def test_other_formats_open(tmp_path: Path, fmt: str, pillow: str) -> None:
    src = two_tone(tmp_path / "in.jpg")
    assert transform(src, tmp_path / "out", {"format": fmt}).mime == f"image/{fmt}"
    with Image.open(tmp_path / "out") as out:
        assert (out.format, out.size) == (pillow, (40, 20))


@pytest.mark.parametrize(
    ("input_format", "expected"), [("PNG", "png"), ("GIF", "gif"), ("WEBP", "webp"), ("BMP", "png")]
)
def test_format_defaults_to_the_input_or_png(tmp_path: Path, input_format: str, expected: str) -> None:
    src = two_tone(tmp_path / "in", fmt=input_format)
    assert transform(src, tmp_path / "out", {}).format == expected


def test_contain_pads_transparent_where_the_format_allows(tmp_path: Path) -> None:
    src = two_tone(tmp_path / "in.jpg")
    raw = {"width": 40, "height": 40, "fit": "contain", "position": "top"}
    transform(src, tmp_path / "out.png", {**raw, "format": "png"})
    with Image.open(tmp_path / "out.png") as out:
        assert out.mode == "RGBA" and out.size == (40, 40)
        assert alpha_at(out, (5, 5)) == 255
        assert out.getpixel((5, 35)) == (0, 0, 0, 0)
    transform(src, tmp_path / "out.jpg", {**raw, "format": "jpeg"})
    with Image.open(tmp_path / "out.jpg") as out:
        assert near(out.getpixel((5, 35)), (0, 0, 0))
    transform(src, tmp_path / "bg.png", {**raw, "format": "png", "background": "#0000ff"})
    with Image.open(tmp_path / "bg.png") as out:
        assert out.mode == "RGB" and out.getpixel((5, 35)) == (0, 0, 255)


@pytest.mark.parametrize(("position", "colour"), [("left", (255, 0, 0)), ("right", (0, 255, 0))])
def test_cover_crops_by_position(tmp_path: Path, position: str, colour: tuple[int, int, int]) -> None:
    src = two_tone(tmp_path / "in.png", fmt="PNG")
    info = transform(src, tmp_path / "out", {"width": 10, "height": 20, "fit": "cover", "position": position})
    assert (info.width, info.height) == (10, 20)
    with Image.open(tmp_path / "out") as out:
        assert out.getpixel((5, 10)) == colour


def test_fill_stretches_and_percent_sizes(tmp_path: Path) -> None:
    src = two_tone(tmp_path / "in.png", fmt="PNG")
    assert transform(src, tmp_path / "a", {"width": 10, "height": 30}).width == 10
    info = transform(src, tmp_path / "b", {"width": "50%", "height": "150%"})
    assert (info.width, info.height) == (20, 30)


def test_icc_profile_is_kept(tmp_path: Path) -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src = two_tone(tmp_path / "in.jpg", icc_profile=icc)
    transform(src, tmp_path / "out", {"format": "webp"})
    with Image.open(tmp_path / "out") as out:
        assert out.info.get("icc_profile") == icc


def test_pixel_limit_is_checked_before_decoding(tmp_path: Path) -> None:
    src = two_tone(tmp_path / "in.png", size=(100, 100), fmt="PNG")
    with pytest.raises(InputError) as info:
        transform(src, tmp_path / "out", {}, max_pixels=5000)
    assert info.value.message == "the image is 100×100 pixels, over the limit of 5000 pixels"
    assert not (tmp_path / "out").exists()


def test_percent_output_over_the_pixel_limit_is_refused_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = two_tone(tmp_path / "in.png", size=(100, 100), fmt="PNG")

    def no_decoding(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the image was decoded")

    with monkeypatch.context() as patch:
        patch.setattr(image_ops.ImageOps, "exif_transpose", no_decoding)
        with pytest.raises(InputError) as info:
            transform(src, tmp_path / "out", {"width": "1000%", "height": "1000%"}, max_pixels=999_999)
    assert info.value.message == (
        "the output would be 1000×1000 pixels (1,000,000), over the limit of 999,999 pixels"
    )
    assert not (tmp_path / "out").exists()
    # Exactly at the limit is allowed, and the output is what Pillow wrote.
    done = transform(src, tmp_path / "out", {"width": "1000%", "height": "1000%"}, max_pixels=1_000_000)
    assert (done.width, done.height) == (1000, 1000)
    with Image.open(tmp_path / "out") as out:
        assert out.size == (1000, 1000)


def test_cover_bounds_the_scaled_picture(tmp_path: Path) -> None:
    # A 100x100 crop of a 200x2 strip scales it to 10000x100 (1 Mpx) before cropping.
    src = two_tone(tmp_path / "in.png", size=(200, 2), fmt="PNG")
    cover = {"width": 100, "height": 100, "fit": "cover"}
    with pytest.raises(InputError) as info:
        transform(src, tmp_path / "out", cover, max_pixels=999_999)
    assert info.value.message == (
        "with fit cover the picture would be scaled to 10000×100 pixels (1,000,000) before its crop "
        "to 100×100, over the limit of 999,999 pixels"
    )
    assert transform(src, tmp_path / "out", cover, max_pixels=1_000_000).width == 100
    assert transform(src, tmp_path / "out", {**cover, "fit": "contain"}, max_pixels=10_000).width == 100


def test_pixel_limit_uses_the_upright_size(tmp_path: Path) -> None:
    # Stored 200x100, displayed 100x200: width 1000 gives 1000x2000 (2 Mpx), not 1000x500.
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    src = two_tone(tmp_path / "in.jpg", size=(200, 100), exif=exif.tobytes())
    with pytest.raises(InputError, match=r"1000×2000 pixels \(2,000,000\), over the limit of 1,999,999"):
        transform(src, tmp_path / "out", {"width": 1000}, max_pixels=1_999_999)
    assert not (tmp_path / "out").exists()


def late_exif_png(path: Path, size: tuple[int, int], orientation: int) -> Path:
    """A PNG whose eXIf chunk comes after the pixels (allowed; only seen once they are decoded)."""
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    buffer = io.BytesIO()
    Image.new("RGB", size, (255, 0, 0)).save(buffer, format="PNG", exif=exif.tobytes())
    data, pos, chunks = buffer.getvalue(), 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        chunks.append(data[pos : pos + 12 + length])
        pos += 12 + length
    late = [chunk for chunk in chunks if chunk[4:8] == b"eXIf"]
    rest = [chunk for chunk in chunks if chunk[4:8] != b"eXIf"]
    assert late and rest[-1][4:8] == b"IEND"
    path.write_bytes(data[:8] + b"".join([*rest[:-1], *late, rest[-1]]))
    return path


def test_pixel_limit_of_a_png_rotated_by_a_late_exif_chunk(tmp_path: Path) -> None:
    src = late_exif_png(tmp_path / "in.png", (200, 100), 6)
    with Image.open(src) as header:
        assert header.size == (200, 100) and "exif" not in header.info  # nothing to predict from
    with pytest.raises(InputError, match=r"1000×2000 pixels"):
        transform(src, tmp_path / "out", {"width": 1000}, max_pixels=1_999_999)
    assert transform(src, tmp_path / "out", {"width": 100}) == image_ops.ImageInfo(
        100, 200, "png", "image/png"
    )


def test_non_image_input(tmp_path: Path) -> None:
    src = tmp_path / "notes.txt"
    src.write_text("not a picture")
    with pytest.raises(InputError, match="not an image"):
        transform(src, tmp_path / "out", {})


def test_truncated_image(tmp_path: Path) -> None:
    whole = two_tone(tmp_path / "whole.png", size=(200, 200), fmt="PNG", compress_level=0)
    src = tmp_path / "cut.png"
    src.write_bytes(whole.read_bytes()[:2000])
    with pytest.raises(InputError, match="could not be decoded"):
        transform(src, tmp_path / "out", {})


def test_output_names() -> None:
    formats = ("jpeg", "png", "webp", "avif", "gif")
    assert [image_ops.output_extension(f) for f in formats] == [".jpg", ".png", ".webp", ".avif", ".gif"]
    assert [image_ops.output_mime(f) for f in formats] == [f"image/{f}" for f in formats]


# --- build_frame_argv -------------------------------------------------------------------------

SRC = Path("/in/clip.mp4")
DST = Path("/out/frame")


def fake_probe(*, duration: float | None = 10.0, video: bool = True, rotation: int = 0) -> ProbeResult:
    return ProbeResult(
        format_name="mov,mp4,m4a,3gp,3g2,mj2",
        mime_type="video/mp4",
        duration=duration,
        size=1000,
        video=VideoStream("h264", 320, 240, 25.0, rotation) if video else None,
    )


def after(argv: list[str], flag: str) -> str:
    """The value following ``flag`` (the last occurrence: input options come first)."""
    return argv[len(argv) - 1 - argv[::-1].index(flag) + 1]


def test_frame_argv_default_jpeg() -> None:
    argv = image_ops.build_frame_argv(SRC, DST, parse_image_options({}), fake_probe())
    assert argv[:6] == ["ffmpeg", "-hide_banner", "-nostdin", "-y", "-loglevel", "error"]
    assert "-ss" not in argv
    assert (after(argv, "-map"), after(argv, "-frames:v")) == ("0:v:0", "1")
    assert (after(argv, "-c:v"), after(argv, "-q:v")) == ("mjpeg", "5")
    assert after(argv, "-vf") == "scale=320:240:flags=lanczos,setsar=1"
    assert argv[-1] == str(DST)
    assert image_ops.frame_format(parse_image_options({})) == "jpeg"


def test_frame_argv_seeks_and_fits() -> None:
    opts = parse_image_options({"start": 2.5, "width": 100, "height": 100, "fit": "contain", "format": "png"})
    argv = image_ops.build_frame_argv(SRC, DST, opts, fake_probe(rotation=270))
    assert argv.index("-ss") < argv.index("-i") and after(argv, "-ss") == "2.500"
    assert after(argv, "-vf") == (
        "scale=75:100:flags=lanczos,format=rgba,pad=100:100:12:0:color=black@0,setsar=1"
    )
    assert after(argv, "-c:v") == "png"


def test_frame_argv_start_in_last_frame_is_pulled_back() -> None:
    argv = image_ops.build_frame_argv(SRC, DST, parse_image_options({"start": 9.99}), fake_probe())
    assert after(argv, "-ss") == "9.960"


@pytest.mark.parametrize("start", [10, 11.5])
def test_frame_argv_start_beyond_input(start: float) -> None:
    with pytest.raises(InputError, match="beyond the end of the input"):
        image_ops.build_frame_argv(SRC, DST, parse_image_options({"start": start}), fake_probe())


def test_frame_argv_needs_video() -> None:
    with pytest.raises(InputError, match="no video stream"):
        image_ops.build_frame_argv(SRC, DST, parse_image_options({}), fake_probe(video=False))


def test_frame_argv_refuses_a_frame_over_the_pixel_limit() -> None:
    opts = parse_image_options({"width": "1000%"})  # 320x240 -> 3200x2400
    assert after(image_ops.build_frame_argv(SRC, DST, opts, fake_probe(), max_pixels=7_680_000), "-vf") == (
        "scale=3200:2400:flags=lanczos,setsar=1"
    )
    with pytest.raises(InputError) as info:
        image_ops.build_frame_argv(SRC, DST, opts, fake_probe(), max_pixels=7_679_999)
    assert info.value.message == (
        "the output would be 3200×2400 pixels (7,680,000), over the limit of 7,679,999 pixels"
    )
    cover = parse_image_options({"width": "1000%", "height": "100%", "fit": "cover"})
    with pytest.raises(InputError, match=r"^with fit cover the picture would be scaled to 3200×2400"):
        image_ops.build_frame_argv(SRC, DST, cover, fake_probe(), max_pixels=1_000_000)


def test_frame_argv_avif_pads_black_and_gif_builds_a_palette() -> None:
    raw = {"width": 100, "height": 100, "fit": "contain"}
    avif = image_ops.build_frame_argv(SRC, DST, parse_image_options({**raw, "format": "avif"}), fake_probe())
    assert "color=black," in after(avif, "-vf") and after(avif, "-c:v") == "libaom-av1"
    assert after(avif, "-f") == "avif"
    gif = image_ops.build_frame_argv(SRC, DST, parse_image_options({"format": "gif"}), fake_probe())
    assert after(gif, "-vf").endswith(",split[a][b];[a]palettegen[p];[b][p]paletteuse")
    assert after(gif, "-f") == "gif"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-f", "lavfi",
         "-i", "testsrc=size=320x240:rate=25:duration=1", "-c:v", "libx264", "-preset", "ultrafast",
         "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )  # fmt: skip
    return path


@pytest.mark.parametrize(
    ("fmt", "pillow"), [("jpeg", "JPEG"), ("png", "PNG"), ("webp", "WEBP"), ("gif", "GIF"), ("avif", "AVIF")]
)
def test_real_frames_open_with_pillow(clip: Path, tmp_path: Path, fmt: str, pillow: str) -> None:
    dst = tmp_path / f"frame{image_ops.output_extension(fmt)}"
    opts = parse_image_options({"format": fmt, "width": 160, "start": 0.5})
    source = asyncio.run(probe(clip))
    subprocess.run(image_ops.build_frame_argv(clip, dst, opts, source), check=True, capture_output=True)
    with Image.open(dst) as out:
        assert (out.format, out.size) == (pillow, (160, 120))


def test_real_frame_contain_png_is_transparent_outside_the_picture(clip: Path, tmp_path: Path) -> None:
    dst = tmp_path / "frame.png"
    opts = parse_image_options({"format": "png", "width": 100, "height": 100, "fit": "contain"})
    subprocess.run(
        image_ops.build_frame_argv(clip, dst, opts, asyncio.run(probe(clip))), check=True, capture_output=True
    )
    with Image.open(dst) as out:
        assert out.size == (100, 100) and out.mode == "RGBA"
        assert alpha_at(out, (50, 2)) == 0
        assert alpha_at(out, (50, 50)) == 255


# --- the handler's output entry ---------------------------------------------------------------


def fake_ctx(tmp_path: Path, src: Path, raw: dict[str, Any], probed: ProbeResult) -> Any:
    """What ``handlers.image`` uses of a TaskContext; ffmpeg runs for real."""

    async def report(percent: int) -> None:
        pass

    async def ffmpeg(argv: list[str], *, duration: float | None, step: str | None = None) -> None:
        subprocess.run(argv, check=True, capture_output=True)

    workdir = tmp_path / "work"
    workdir.mkdir()
    return SimpleNamespace(
        task=tasks_pb2.Task(kind="image"),
        options=parse_image_options(raw),
        input_path=src,
        probe=probed,
        workdir=workdir,
        settings=SimpleNamespace(max_pixels=MAX_PIXELS, ffmpeg_path="ffmpeg"),
        report=report,
        ffmpeg=ffmpeg,
    )


def blind_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the output probe answer 0x0, as it did for a picture too large for it to open."""
    real = handlers.probe

    async def zero_size(path: Path, *, rotation: bool = True) -> ProbeResult:
        probed = await real(path, rotation=rotation)
        assert probed.video is not None
        video = VideoStream(probed.video.codec, 0, 0, None, 0)
        return ProbeResult(probed.format_name, probed.mime_type, None, probed.size, video, None, True)

    monkeypatch.setattr(handlers, "probe", zero_size)


@pytest.mark.parametrize("blind", [False, True])
def test_image_output_reports_the_size_pillow_wrote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, blind: bool
) -> None:
    src = two_tone(tmp_path / "in.png", size=(30, 20), fmt="PNG")
    ctx = fake_ctx(tmp_path, src, {"width": "200%"}, asyncio.run(probe(src)))
    if blind:
        blind_probe(monkeypatch)
    (output,) = asyncio.run(handlers.image(ctx)).outputs
    assert (output.entry.width, output.entry.height) == (60, 40)
    assert (output.entry.type, output.name) == ("image/png", "image.png")
    with Image.open(output.path) as out:
        assert out.size == (60, 40)


@pytest.mark.parametrize("blind", [False, True])
def test_frame_output_never_reports_zero_size(
    clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, blind: bool
) -> None:
    ctx = fake_ctx(tmp_path, clip, {"width": 160, "format": "png"}, asyncio.run(probe(clip)))
    if blind:
        blind_probe(monkeypatch)
    (output,) = asyncio.run(handlers.image(ctx)).outputs
    assert (output.entry.width, output.entry.height) == (160, 120)
    with Image.open(output.path) as out:
        assert out.size == (160, 120)
