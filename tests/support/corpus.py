"""Generate a small but realistic media corpus for end-to-end tests.

Everything is synthesised locally with ffmpeg (lavfi ``testsrc2`` / ``sine`` /
``aevalsrc`` sources) and Pillow, so the suite needs no checked-in binaries and no
network. :func:`build_corpus` writes every file into one directory (which can be
served as-is by :class:`tests.support.origin.Origin`) and returns a :class:`Corpus`
naming each file.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

__all__ = [
    "FFMPEG",
    "FFPROBE",
    "Corpus",
    "CorpusError",
    "build_corpus",
    "ffprobe_json",
    "make_hd_clip",
    "mp4_top_level_boxes",
]

FFMPEG = shutil.which("ffmpeg") or "ffmpeg"
FFPROBE = shutil.which("ffprobe") or "ffprobe"

#: Fraction of the (moov-at-end) source mp4 kept in ``truncated.mp4``.
TRUNCATE_FRACTION = 0.3

_FFMPEG_BASE = (FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error", "-y")
_X264 = ("-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p")
# Six distinct tones so each 5.1 channel is distinguishable (FL FR FC LFE BL BR).
_SIX_TONES = "|".join(f"0.4*sin({f}*2*PI*t)" for f in (440, 550, 660, 110, 770, 880))

_HTML = """<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <title>Transmute test page</title>
  </head>
  <body>
    <h1>Not a media file</h1>
    <p>This page exists so tests can check that HTML inputs are rejected.</p>
  </body>
</html>
"""


class CorpusError(RuntimeError):
    """Raised when ffmpeg fails to generate a corpus file."""


@dataclass(frozen=True)
class Corpus:
    """Paths of the generated test inputs; all files live directly in :attr:`root`."""

    root: Path
    #: 2 s 320x240 25 fps h264 (yuv420p) + stereo aac 440 Hz mp4, faststart (moov first).
    clip_av: Path
    #: 2 s 320x240 25 fps h264 mp4 with no audio stream.
    clip_silent: Path
    #: 2 s 321x241 (odd dims) mpeg4-part-2 yuv420p video + aac mp4.
    clip_odd: Path
    #: 2 s 320x180 h264 + aac mp4 with a 90 degree display matrix (displays 180x320).
    clip_rotated: Path
    #: 2 s 320x240 h264 mp4 with 6-channel (5.1) aac audio.
    clip_51: Path
    #: 2 s 6-channel (5.1) 48 kHz flac, audio only.
    audio_51: Path
    #: 3 s 44.1 kHz stereo mp3 (440 Hz left, 660 Hz right).
    audio_stereo: Path
    #: 200x100 RGBA PNG; the right half is fully transparent.
    png_alpha: Path
    #: 200x100 JPEG stored landscape with EXIF Orientation = 6 (displays 100x200).
    jpeg_exif_rotated: Path
    #: 64x64 RGB PNG (for the latency benchmark).
    png_small: Path
    #: First 30% of a 2 s h264+aac mp4 whose moov is at the end: unparseable.
    truncated_mp4: Path
    #: ``index.html``: a small HTML document (not media).
    html_page: Path
    #: 48x32 24-bit BMP.
    bmp_image: Path

    def files(self) -> dict[str, Path]:
        """Return ``{field name: path}`` for every generated file (excluding ``root``)."""
        return {name: path for name, path in asdict(self).items() if name != "root"}


def _run(args: Sequence[str | os.PathLike[str]], *, timeout: float = 120.0) -> None:
    """Run a command, raising :class:`CorpusError` with its stderr if it fails."""
    proc = subprocess.run(
        [os.fspath(a) for a in args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise CorpusError(f"command failed ({proc.returncode}): {' '.join(map(str, args))}\n{proc.stderr}")


def _ffmpeg(*args: str | os.PathLike[str]) -> None:
    """Run ffmpeg quietly with ``args`` appended to the common flags."""
    _run([*_FFMPEG_BASE, *args])


def _testsrc(size: str, seconds: float, fps: int = 25) -> tuple[str, ...]:
    return ("-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}:duration={seconds}")


def _sine(seconds: float, freq: int = 440) -> tuple[str, ...]:
    return ("-f", "lavfi", "-i", f"sine=frequency={freq}:sample_rate=48000:duration={seconds}")


def ffprobe_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Return ``ffprobe -show_format -show_streams`` output for ``path`` as a dict.

    Raises :class:`CorpusError` if ffprobe cannot parse the file.
    """
    proc = subprocess.run(
        [FFPROBE, "-v", "error", "-print_format", "json", "-show_format", "-show_streams", os.fspath(path)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        raise CorpusError(f"ffprobe failed ({proc.returncode}) on {path}: {proc.stderr.strip()}")
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def mp4_top_level_boxes(path: str | os.PathLike[str]) -> list[str]:
    """Return the four-character types of the top-level ISO-BMFF boxes in ``path``, in order.

    Parsing stops at the end of the file or at a box that runs past it, so a
    truncated file lists the (partial) box it was cut in and nothing after it.
    """
    boxes: list[str] = []
    size_on_disk = os.path.getsize(path)
    with open(path, "rb") as fh:
        offset = 0
        while offset + 8 <= size_on_disk:
            fh.seek(offset)
            size, kind = struct.unpack(">I4s", fh.read(8))
            if size == 1:
                (size,) = struct.unpack(">Q", fh.read(8))
            elif size == 0:
                size = size_on_disk - offset
            boxes.append(kind.decode("latin-1"))
            if size < 8:
                break
            offset += size
    return boxes


# --------------------------------------------------------------------------- video


def _make_clip_av(out: Path) -> None:
    _ffmpeg(
        *_testsrc("320x240", 2),
        *_sine(2),
        *_X264,
        "-c:a", "aac", "-b:a", "96k", "-ac", "2",
        "-shortest", "-movflags", "+faststart",
        out,
    )  # fmt: skip


def _make_clip_silent(out: Path) -> None:
    _ffmpeg(*_testsrc("320x240", 2), *_X264, "-an", "-movflags", "+faststart", out)


def _make_clip_odd(out: Path) -> None:
    # testsrc2 rounds its size to even numbers, so scale afterwards. mpeg4 (part 2)
    # accepts odd yuv420p dimensions, unlike libx264 - the case transcoders must handle.
    _ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=2,scale=321:241",
        *_sine(2),
        "-c:v", "mpeg4", "-q:v", "4", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "96k", "-ac", "2",
        "-shortest", "-movflags", "+faststart",
        out,
    )  # fmt: skip


def _make_clip_rotated(out: Path) -> None:
    # ffmpeg 5.1 has no -display_rotation; the legacy "rotate" stream tag on a stream
    # copy is turned into a display-matrix side data entry by the mov muxer.
    plain = out.with_name(out.stem + ".unrotated.tmp.mp4")
    try:
        _ffmpeg(
            *_testsrc("320x180", 2),
            *_sine(2, 660),
            *_X264,
            "-c:a", "aac", "-b:a", "96k", "-ac", "2",
            "-shortest",
            plain,
        )  # fmt: skip
        _ffmpeg(
            "-i", plain,
            "-map", "0", "-c", "copy",
            "-metadata:s:v:0", "rotate=90",
            "-movflags", "+faststart",
            out,
        )  # fmt: skip
    finally:
        plain.unlink(missing_ok=True)


def _make_clip_51(out: Path) -> None:
    _ffmpeg(
        *_testsrc("320x240", 2),
        "-f", "lavfi", "-i", f"aevalsrc=exprs={_SIX_TONES}:channel_layout=5.1:sample_rate=48000:duration=2",
        *_X264,
        "-c:a", "aac", "-b:a", "192k",
        "-shortest", "-movflags", "+faststart",
        out,
    )  # fmt: skip


def _make_truncated_mp4(out: Path) -> None:
    full = out.with_name(out.stem + ".full.tmp.mp4")
    try:
        # No +faststart: the moov box is written after mdat, so any prefix lacks it.
        _ffmpeg(*_testsrc("320x240", 2), *_sine(2), *_X264, "-c:a", "aac", "-shortest", full)
        data = full.read_bytes()
        out.write_bytes(data[: int(len(data) * TRUNCATE_FRACTION)])
    finally:
        full.unlink(missing_ok=True)


# --------------------------------------------------------------------------- audio


def _make_audio_51(out: Path) -> None:
    _ffmpeg(
        "-f", "lavfi", "-i", f"aevalsrc=exprs={_SIX_TONES}:channel_layout=5.1:sample_rate=48000:duration=2",
        "-c:a", "flac", "-sample_fmt", "s16",
        out,
    )  # fmt: skip


def _make_audio_stereo(out: Path) -> None:
    _ffmpeg(
        "-f", "lavfi", "-i",
        "aevalsrc=exprs=0.5*sin(440*2*PI*t)|0.5*sin(660*2*PI*t):channel_layout=stereo:sample_rate=44100:duration=3",
        "-c:a", "libmp3lame", "-b:a", "128k",
        out,
    )  # fmt: skip


# --------------------------------------------------------------------------- images


def _make_png_alpha(out: Path) -> None:
    img = Image.new("RGBA", (200, 100), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, 99, 99), fill=(220, 40, 40, 255))  # opaque left half
    draw.ellipse((120, 20, 179, 79), fill=(40, 40, 220, 128))  # half-transparent disc
    img.save(out, format="PNG")


def _make_jpeg_exif_rotated(out: Path) -> None:
    # Stored 200x100; a red block in the stored top-left corner makes orientation visible.
    img = Image.new("RGB", (200, 100), (240, 240, 240))
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, 49, 49), fill=(220, 30, 30))
    draw.rectangle((150, 50, 199, 99), fill=(30, 30, 220))
    exif = img.getexif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display -> 100x200
    img.save(out, format="JPEG", quality=90, exif=exif)


def _make_png_small(out: Path) -> None:
    img = Image.new("RGB", (64, 64), (30, 160, 90))
    ImageDraw.Draw(img).rectangle((16, 16, 47, 47), fill=(250, 250, 250))
    img.save(out, format="PNG")


def _make_bmp(out: Path) -> None:
    img = Image.new("RGB", (48, 32), (200, 180, 40))
    ImageDraw.Draw(img).line((0, 0, 47, 31), fill=(0, 0, 0), width=3)
    img.save(out, format="BMP")


def _make_html(out: Path) -> None:
    out.write_text(_HTML, encoding="utf-8")


#: field name -> (file name, generator)
_RECIPES: dict[str, tuple[str, Callable[[Path], None]]] = {
    "clip_av": ("clip_av.mp4", _make_clip_av),
    "clip_silent": ("clip_silent.mp4", _make_clip_silent),
    "clip_odd": ("clip_odd.mp4", _make_clip_odd),
    "clip_rotated": ("clip_rotated.mp4", _make_clip_rotated),
    "clip_51": ("clip_51.mp4", _make_clip_51),
    "audio_51": ("audio_51.flac", _make_audio_51),
    "audio_stereo": ("audio_stereo.mp3", _make_audio_stereo),
    "png_alpha": ("png_alpha.png", _make_png_alpha),
    "jpeg_exif_rotated": ("jpeg_exif_rotated.jpg", _make_jpeg_exif_rotated),
    "png_small": ("png_small.png", _make_png_small),
    "truncated_mp4": ("truncated.mp4", _make_truncated_mp4),
    "html_page": ("index.html", _make_html),
    "bmp_image": ("image.bmp", _make_bmp),
}


def build_corpus(dest: Path, *, workers: int | None = None) -> Corpus:
    """Generate every corpus file into ``dest`` (created if needed) and return a :class:`Corpus`.

    ffmpeg jobs run concurrently on up to ``workers`` threads (default: CPU count,
    capped at 4). Existing files are overwritten. Raises :class:`CorpusError` if any
    generator fails.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if workers is None:
        workers = max(1, min(4, os.cpu_count() or 1))
    paths = {field: dest / filename for field, (filename, _) in _RECIPES.items()}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="corpus") as pool:
        futures = [pool.submit(make, paths[field]) for field, (_, make) in _RECIPES.items()]
        for future in futures:
            future.result()
    return Corpus(root=dest, **paths)


def make_hd_clip(dest: Path, seconds: int = 10, width: int = 1920, height: int = 1080, fps: int = 30) -> Path:
    """Generate a ``width``x``height`` h264 (veryfast) + stereo aac mp4 for benchmarks.

    If ``dest`` has a file suffix (e.g. ``bench/hd.mp4``) it is the output file;
    otherwise it is a directory (created if needed) and the file is named
    ``hd_{width}x{height}_{fps}fps_{seconds}s.mp4``. Returns the output path.
    """
    dest = Path(dest)
    if dest.suffix:
        out = dest
    else:
        out = dest / f"hd_{width}x{height}_{fps}fps_{seconds}s.mp4"
    out.parent.mkdir(parents=True, exist_ok=True)
    _run(
        [
            *_FFMPEG_BASE,
            *_testsrc(f"{width}x{height}", seconds, fps),
            *_sine(seconds),
            *_X264,
            "-c:a", "aac", "-b:a", "128k", "-ac", "2",
            "-shortest", "-movflags", "+faststart",
            out,
        ],
        timeout=600,
    )  # fmt: skip
    return out
