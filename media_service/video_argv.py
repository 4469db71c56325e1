"""The ffmpeg argv for a ``video`` task (pure), plus the trim window every ffmpeg kind shares.

Encoder choices, picked for a CPU server where turnaround matters more than the last few percent of
file size:

* h264: libx264 ``-preset veryfast`` (about 3x faster than ``medium`` for ~10-15 % more bits at the
  same CRF).
* h265: libx265 ``-preset veryfast``, ``-tag:v hvc1`` so Apple players accept the mp4/mov, x265's
  own banner silenced with ``log-level=error``.
* vp9: libvpx-vp9 ``-deadline good -cpu-used 4 -row-mt 1``; constant quality (``-b:v 0``), or
  constrained quality with ``-b:v`` as the ceiling when ``bitrate`` is given.
* av1: libsvtav1 ``-preset 8`` (SVT's own speed/quality midpoint for live-ish work).

Every output is 8-bit ``yuv420p`` (plays everywhere), has square pixels, no rotation tag (ffmpeg
autorotates while decoding and does not copy the display matrix when it does, so the stored size is
the display size), no global metadata or chapters (phone videos carry GPS tags), and for mp4/mov
the index at the front (``+faststart``). Audio is the first audio stream, aac (mp4/mov) or opus
(webm) at the quality table's bitrate, downmixed to stereo when it has more than two channels.
``bitrate`` caps the video stream (``-maxrate``/``-bufsize``) on top of the CRF from ``quality``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from media_service.options import AdaptiveOptions, AudioOptions, VideoOptions
from taskkit.errors import InputError
from taskkit.media import (
    DEFAULT_MAX_PIXELS,
    ProbeResult,
    audio_bitrate,
    base_argv,
    compute_layout,
    ffmpeg_filters,
    input_args,
    video_crf,
)

# format -> (file extension, MIME type, ffmpeg muxer)
_FORMATS: Final[dict[str, tuple[str, str, str]]] = {
    "mp4": (".mp4", "video/mp4", "mp4"),
    "webm": (".webm", "video/webm", "webm"),
    "mov": (".mov", "video/quicktime", "mov"),
}
# Smallest side each encoder accepts (x265 refuses < 16, SVT-AV1 < 64).
_MIN_SIDE: Final = {"h264": 2, "h265": 16, "vp9": 2, "av1": 64}


def output_extension(fmt: str) -> str:
    """File extension (with the dot) of a video output format."""
    return _FORMATS[fmt][0]


def output_mime(fmt: str) -> str:
    """MIME type of a video output format."""
    return _FORMATS[fmt][1]


def check_start(start: float, probe: ProbeResult) -> None:
    """Refuse a start time at or past the end of the input (ffmpeg would write an empty file)."""
    if start > 0 and probe.duration is not None and start >= probe.duration:
        raise InputError(
            f"options.start ({start:g} s) is at or beyond the end of the input ({probe.duration:g} s long)"
        )


def expected_duration(
    opts: VideoOptions | AudioOptions | AdaptiveOptions, probe: ProbeResult
) -> float | None:
    """Seconds of media the output will hold, for progress; None when unknown."""
    start, length = opts.clip()
    if probe.duration is None:
        return length
    remaining = max(0.0, probe.duration - start)
    return remaining if length is None else min(length, remaining)


def _video_codec_args(opts: VideoOptions) -> list[str]:
    crf = str(video_crf(opts.codec, opts.quality))
    cap = opts.bitrate
    if opts.codec == "vp9":
        return [
            "-c:v", "libvpx-vp9", "-deadline", "good", "-cpu-used", "4", "-row-mt", "1",
            "-crf", crf, "-b:v", str(cap or 0),
        ]  # fmt: skip
    if opts.codec == "av1":
        return ["-c:v", "libsvtav1", "-preset", "8", "-crf", crf] + (["-maxrate", str(cap)] if cap else [])
    vbv = ["-maxrate", str(cap), "-bufsize", str(2 * cap)] if cap else []
    if opts.codec == "h265":
        params = ["-x265-params", "log-level=error", "-tag:v", "hvc1"]
        return ["-c:v", "libx265", "-preset", "veryfast", "-crf", crf, *vbv, *params]
    return ["-c:v", "libx264", "-preset", "veryfast", "-crf", crf, *vbv]


def _audio_codec_args(opts: VideoOptions, probe: ProbeResult) -> list[str]:
    codec, encoder = ("opus", "libopus") if opts.format == "webm" else ("aac", "aac")
    args = ["-c:a", encoder, "-b:a", str(audio_bitrate(codec, opts.quality))]
    if probe.audio is not None and probe.audio.channels > 2:
        args += ["-ac", "2"]
    return args


def build_video_argv(
    src: Path,
    dst: Path,
    opts: VideoOptions,
    probe: ProbeResult,
    *,
    ffmpeg: str = "ffmpeg",
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> list[str]:
    """The complete ffmpeg argv that turns ``src`` into the ``video`` output ``dst``; InputError
    when a frame of it would be over ``max_pixels`` (``settings.max_pixels``)."""
    if probe.is_image:
        raise InputError("the input is a still image, not a video")
    if probe.video is None:
        raise InputError("the input has no video stream")
    start, length = opts.clip()
    check_start(start, probe)
    layout = compute_layout(
        probe.video.display_width,
        probe.video.display_height,
        width=opts.width,
        height=opts.height,
        fit=opts.fit,
        position=opts.position,
        even=True,
        max_pixels=max_pixels,
    )
    min_side = _MIN_SIDE[opts.codec]
    if min(layout.width, layout.height) < min_side:
        raise InputError(
            f"the output would be {layout.width}×{layout.height} pixels, but {opts.codec} needs at least "
            f"{min_side}×{min_side}"
        )
    filters = [f"fps={opts.fps:g}"] if opts.fps is not None else []
    filters += ffmpeg_filters(layout, background=opts.background, alpha=False)
    keep_audio = not opts.mute and probe.audio is not None
    argv = base_argv(ffmpeg) + input_args(src, probe, start, length)
    argv += ["-map", "0:v:0", *(["-map", "0:a:0?"] if keep_audio else [])]
    argv += ["-map_metadata", "-1", "-map_chapters", "-1", "-vf", ",".join(filters)]
    argv += [*_video_codec_args(opts), "-pix_fmt", "yuv420p"]
    argv += _audio_codec_args(opts, probe) if keep_audio else ["-an"]
    if opts.format in ("mp4", "mov"):
        argv += ["-movflags", "+faststart"]
    return [*argv, "-f", _FORMATS[opts.format][2], str(dst)]
