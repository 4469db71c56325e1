"""The ``image`` kind: Pillow for image inputs, one ffmpeg frame for video inputs.

Image inputs (``transform_image``): the pixel count is checked from the header before anything is
decoded, EXIF orientation is applied (the output is upright and its size is the display size), all
metadata is dropped except the ICC colour profile (dropping it would shift colours of wide-gamut
phone photos), and the size/fit comes from ``geometry`` (LANCZOS). Output format defaults to the
input's; inputs Pillow reads but we do not write (BMP, TIFF, …) default to PNG, which is lossless
and keeps alpha. Animated GIF/WebP inputs give their first frame. Alpha going into JPEG is
flattened onto ``background``, else black (the reference's default for formats without
transparency); ``contain`` padding is transparent when the format has alpha and no background is
given.

Video inputs (``build_frame_argv``): one frame at ``start`` (default 0), fitted by the same geometry,
written by ffmpeg: JPEG via mjpeg, PNG, WebP via libwebp, GIF with a per-frame palette, AVIF via
libaom-av1 still-picture into ffmpeg's avif muxer. ffmpeg 5.1's avif muxer has no alpha, so AVIF
frames pad with black instead of transparent.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from media_service.options import ImageOptions
from media_service.video_argv import check_start
from taskkit.errors import InputError
from taskkit.media import (
    DEFAULT_MAX_PIXELS,
    Layout,
    ProbeResult,
    apply_layout,
    base_argv,
    compute_layout,
    demuxers,
    ffmpeg_filters,
    image_quality,
    input_args,
    mjpeg_qscale,
    video_crf,
)


@dataclass(frozen=True)
class ImageInfo:
    """What was written: the output entry's size (as Pillow produced it) and type."""

    width: int
    height: int
    format: str
    mime: str


@dataclass(frozen=True)
class _ImageFormat:
    extension: str
    mime: str
    pillow: str  # Pillow's format name for save()
    alpha: bool  # whether the format keeps transparency


_FORMATS: Final = {
    "jpeg": _ImageFormat(".jpg", "image/jpeg", "JPEG", False),
    "png": _ImageFormat(".png", "image/png", "PNG", True),
    "webp": _ImageFormat(".webp", "image/webp", "WEBP", True),
    "avif": _ImageFormat(".avif", "image/avif", "AVIF", True),
    "gif": _ImageFormat(".gif", "image/gif", "GIF", True),
}
# Pillow's name for an input format -> our output format when the task gives none.
_SAME_AS_INPUT: Final = {
    "JPEG": "jpeg",
    "MPO": "jpeg",
    "PNG": "png",
    "WEBP": "webp",
    "AVIF": "avif",
    "GIF": "gif",
}
_FALLBACK_FORMAT: Final = "png"
_DEFAULT_FRAME_FORMAT: Final = "jpeg"
_ALPHA_MODES: Final = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})


def output_extension(fmt: str) -> str:
    """File extension (with the dot) of an image output format."""
    return _FORMATS[fmt].extension


def output_mime(fmt: str) -> str:
    """MIME type of an image output format."""
    return _FORMATS[fmt].mime


def output_format(opts: ImageOptions, input_format: str | None) -> str:
    """The format to write: the option, else the input's (Pillow name), else PNG."""
    return opts.format or _SAME_AS_INPUT.get(input_format or "", _FALLBACK_FORMAT)


def frame_format(opts: ImageOptions) -> str:
    """The format of a frame taken from a video: the option, else JPEG."""
    return opts.format or _DEFAULT_FRAME_FORMAT


def _rgb(background: str) -> tuple[int, int, int]:
    return int(background[1:3], 16), int(background[3:5], 16), int(background[5:7], 16)


def _open_checked(src: Path, max_pixels: int) -> Image.Image:
    """Open (header only) and refuse images over ``max_pixels`` before any pixel is decoded."""
    # Pillow's own bomb guard must not refuse what our limit allows (it errors at twice its limit).
    if Image.MAX_IMAGE_PIXELS is not None and max_pixels > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(src, formats=demuxers.PILLOW_FORMATS)
    except Image.DecompressionBombError:
        raise InputError(f"the image is over the limit of {max_pixels} pixels") from None
    except (UnidentifiedImageError, OSError):
        raise InputError("the input is not an image that can be read") from None
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise InputError(f"the image is {width}×{height} pixels, over the limit of {max_pixels} pixels")
    return image


def _upright_size(image: Image.Image) -> tuple[int, int]:
    """The display size after EXIF orientation, read from the header (no pixel decoded).

    A PNG's eXIf chunk may follow the pixels, and Pillow decodes them all to look for it: such a
    PNG is taken as stored here, and the layout is redone if the decoded image turns out rotated."""
    width, height = image.size
    if image.format == "PNG" and "exif" not in image.info:
        return width, height
    try:
        orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
    except (OSError, ValueError, SyntaxError, TypeError):
        return width, height
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _layout(width: int, height: int, opts: ImageOptions, max_pixels: int) -> Layout:
    return compute_layout(
        width,
        height,
        width=opts.width,
        height=opts.height,
        fit=opts.fit,
        position=opts.position,
        even=False,
        max_pixels=max_pixels,
    )


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in _ALPHA_MODES or "transparency" in image.info


def _save_kwargs(fmt: str, opts: ImageOptions, icc_profile: bytes | None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if fmt == "jpeg":
        kwargs = {"quality": image_quality("jpeg", opts.quality), "optimize": True, "progressive": True}
    elif fmt == "webp":
        kwargs = {"quality": image_quality("webp", opts.quality), "method": 4}
    elif fmt == "avif":
        kwargs = {"quality": image_quality("avif", opts.quality)}
    if icc_profile and fmt != "gif":
        kwargs["icc_profile"] = icc_profile
    return kwargs


def transform_image(src: Path, dst: Path, opts: ImageOptions, *, max_pixels: int) -> ImageInfo:
    """Convert/resize the image ``src`` into ``dst`` per ``opts`` (blocking; run it off the loop).

    ``max_pixels`` bounds the input and, before anything is decoded, the output (geometry)."""
    with _open_checked(src, max_pixels) as image:
        fmt = output_format(opts, image.format)
        predicted = _upright_size(image)
        layout = _layout(*predicted, opts, max_pixels)
        try:
            upright = ImageOps.exif_transpose(image)
        except (OSError, ValueError, SyntaxError):
            raise InputError("the image could not be decoded") from None
    if upright.size != predicted:
        layout = _layout(upright.width, upright.height, opts, max_pixels)
    spec = _FORMATS[fmt]
    # A CMYK profile does not describe the RGB pixels we write.
    icc_profile = None if upright.mode == "CMYK" else upright.info.get("icc_profile")
    pads = layout.fit == "contain" and (layout.scaled_width, layout.scaled_height) != (
        layout.width,
        layout.height,
    )
    alpha = spec.alpha and (_has_alpha(upright) or (pads and opts.background is None))
    work = upright.convert("RGBA") if _has_alpha(upright) or alpha else upright.convert("RGB")
    if work.mode == "RGBA" and not alpha:
        flat = Image.new("RGB", work.size, _rgb(opts.background or "#000000"))
        flat.paste(work, mask=work.getchannel("A"))
        work = flat
    if opts.background is not None:
        fill: tuple[int, ...] = (*_rgb(opts.background), 255) if alpha else _rgb(opts.background)
    else:
        fill = (0, 0, 0, 0) if alpha else (0, 0, 0)
    result = apply_layout(work, layout, fill=fill)
    result.info = {}  # no EXIF/XMP/comments ride along; ICC is passed explicitly
    result.save(dst, format=spec.pillow, **_save_kwargs(fmt, opts, icc_profile))
    return ImageInfo(result.width, result.height, fmt, spec.mime)


def _frame_codec_args(fmt: str, opts: ImageOptions) -> list[str]:
    if fmt == "jpeg":
        return ["-c:v", "mjpeg", "-q:v", str(mjpeg_qscale(opts.quality)), "-pix_fmt", "yuvj420p",
                "-f", "image2", "-update", "1"]  # fmt: skip
    if fmt == "png":
        return ["-c:v", "png", "-f", "image2", "-update", "1"]
    if fmt == "webp":
        return ["-c:v", "libwebp", "-quality", str(image_quality("webp", opts.quality)), "-f", "webp"]
    if fmt == "avif":
        crf = str(video_crf("av1", opts.quality))
        return ["-c:v", "libaom-av1", "-still-picture", "1", "-crf", crf, "-cpu-used", "6",
                "-pix_fmt", "yuv420p", "-f", "avif"]  # fmt: skip
    return ["-f", "gif"]


def frame_layout(opts: ImageOptions, probe: ProbeResult, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Layout:
    """The layout of a frame taken from a video; InputError when it would be over ``max_pixels``."""
    if probe.video is None:
        raise InputError("the input has no video stream to take a frame from")
    return _layout(probe.video.display_width, probe.video.display_height, opts, max_pixels)


def build_frame_argv(
    src: Path,
    dst: Path,
    opts: ImageOptions,
    probe: ProbeResult,
    *,
    ffmpeg: str = "ffmpeg",
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> list[str]:
    """The complete ffmpeg argv that writes one frame of the video ``src`` at ``start`` to ``dst``;
    InputError when the frame would be over ``max_pixels`` (``settings.max_pixels``)."""
    if probe.video is None:
        raise InputError("the input has no video stream to take a frame from")
    start = opts.start or 0.0
    check_start(start, probe)
    if probe.duration is not None:
        # A seek into the last frame interval can decode nothing; take the last frame instead.
        start = min(start, max(0.0, probe.duration - 1.0 / (probe.video.fps or 25.0)))
    fmt = frame_format(opts)
    layout = frame_layout(opts, probe, max_pixels=max_pixels)
    alpha = _FORMATS[fmt].alpha and fmt != "avif"
    chain = ",".join(ffmpeg_filters(layout, background=opts.background, alpha=alpha))
    if fmt == "gif":
        chain += ",split[a][b];[a]palettegen[p];[b][p]paletteuse"
    argv = base_argv(ffmpeg) + input_args(src, probe, start, None)
    argv += ["-map", "0:v:0", "-frames:v", "1", "-map_metadata", "-1", "-vf", chain]
    return [*argv, *_frame_codec_args(fmt, opts), str(dst)]
