"""The five ``quality`` levels, mapped once per encoder.

The API speaks in levels (``very_low`` … ``very_high``); encoders speak in CRF, q-scale or
bitrate. Every encoder setting derived from a level comes from the table below, so the README can
quote it verbatim and a change of taste is one edit. When a task gives no level, ``medium``
applies.

| level     | x264 CRF | x265 CRF | vp9 CRF | av1 CRF | JPEG/WebP q | AVIF q | MJPEG q:v |
|-----------|---------:|---------:|--------:|--------:|------------:|-------:|----------:|
| very_low  |       32 |       34 |      45 |      50 |          50 |     40 |        12 |
| low       |       28 |       30 |      38 |      42 |          65 |     55 |         8 |
| medium    |       23 |       26 |      33 |      35 |          80 |     70 |         5 |
| high      |       20 |       23 |      28 |      28 |          88 |     82 |         3 |
| very_high |       18 |       20 |      24 |      22 |          95 |     92 |         2 |

| level     |  mp3 |  aac | opus | vorbis |
|-----------|-----:|-----:|-----:|-------:|
| very_low  |  96k |  64k |  48k |    64k |
| low       | 128k |  96k |  64k |    96k |
| medium    | 192k | 128k |  96k |   128k |
| high      | 256k | 192k | 128k |   192k |
| very_high | 320k | 256k | 192k |   256k |

Notes:

* CRF: lower is better. vp9 runs in constant-quality mode (``-crf N -b:v 0``) unless a bitrate
  cap is given; av1 uses libsvtav1's CRF (``-crf N``, capped CRF when a bitrate is given).
* JPEG/WebP/AVIF ``q`` is Pillow's 0..100 ``quality`` (and ffmpeg libwebp's ``-quality``);
  AVIF needs a lower number than JPEG for the same look. For AVIF stills made by ffmpeg
  (libaom-av1) the av1 CRF column applies.
* MJPEG ``q:v`` is ffmpeg's 2..31 q-scale (lower is better), used for JPEG frames taken from
  video.
* Audio bitrates are in bits per second (``k`` = 1000) and are also used for the audio track of
  video outputs (aac for mp4/mov, opus for webm). wav and flac are lossless: no level applies.
"""

from __future__ import annotations

from typing import Final

QUALITY_LEVELS: Final = ("very_low", "low", "medium", "high", "very_high")
DEFAULT_QUALITY: Final = "medium"

# One row per setting, one column per level in QUALITY_LEVELS order (the table above).
_VIDEO_CRF: Final[dict[str, tuple[int, ...]]] = {
    "h264": (32, 28, 23, 20, 18),
    "h265": (34, 30, 26, 23, 20),
    "vp9": (45, 38, 33, 28, 24),
    "av1": (50, 42, 35, 28, 22),
}
_IMAGE_QUALITY: Final[dict[str, tuple[int, ...]]] = {
    "jpeg": (50, 65, 80, 88, 95),
    "webp": (50, 65, 80, 88, 95),
    "avif": (40, 55, 70, 82, 92),
}
_MJPEG_QSCALE: Final = (12, 8, 5, 3, 2)
_AUDIO_BITRATE: Final[dict[str, tuple[int, ...]]] = {
    "mp3": (96_000, 128_000, 192_000, 256_000, 320_000),
    "aac": (64_000, 96_000, 128_000, 192_000, 256_000),
    "opus": (48_000, 64_000, 96_000, 128_000, 192_000),
    "vorbis": (64_000, 96_000, 128_000, 192_000, 256_000),
}


def _column(level: str | None) -> int:
    return QUALITY_LEVELS.index(level or DEFAULT_QUALITY)


def video_crf(codec: str, level: str | None) -> int:
    """CRF for a video codec name (h264, h265, vp9, av1) at a level."""
    return _VIDEO_CRF[codec][_column(level)]


def image_quality(image_format: str, level: str | None) -> int:
    """Pillow/libwebp 0..100 quality for jpeg, webp or avif at a level."""
    return _IMAGE_QUALITY[image_format][_column(level)]


def mjpeg_qscale(level: str | None) -> int:
    """ffmpeg mjpeg ``-q:v`` (2 best .. 31 worst) at a level."""
    return _MJPEG_QSCALE[_column(level)]


def audio_bitrate(codec: str, level: str | None) -> int:
    """Bits per second for an audio codec name (mp3, aac, opus, vorbis) at a level."""
    return _AUDIO_BITRATE[codec][_column(level)]
