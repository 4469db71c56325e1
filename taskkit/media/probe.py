"""Probing: what the worker learns about a file before (and after) processing it.

In-process, with no subprocess: still images from their header with Pillow, everything else with
PyAV (libavformat, the library ffprobe is built on). Starting an ffprobe process costs ~100-170 ms,
mostly the dynamic loader resolving Debian's ffmpeg libraries; that was the bulk of the fixed cost
of a task (docs/performance.md). Opening a container in-process costs a few milliseconds, plus one
decoded frame for a video's display rotation.
"""

from __future__ import annotations

import asyncio
import warnings
from dataclasses import dataclass
from pathlib import Path

import av
import av.container
import av.error
import av.logging
import av.stream
import av.video.stream
from PIL import Image
from transmute.tasks.v1 import tasks_pb2

from taskkit.errors import InputError
from taskkit.media import demuxers

# libavformat format names -> MIME types for the formats we accept as inputs.
_CONTAINER_MIME = {
    "mov,mp4,m4a,3gp,3g2,mj2": "video/mp4",
    "matroska,webm": "video/webm",
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "flac": "audio/flac",
    "ogg": "audio/ogg",
    "aac": "audio/aac",
    "avi": "video/x-msvideo",
    "png_pipe": "image/png",
    "bmp_pipe": "image/bmp",
    "tiff_pipe": "image/tiff",
    "jpeg_pipe": "image/jpeg",
    "webp_pipe": "image/webp",
    "gif": "image/gif",
    "gif_pipe": "image/gif",
    "mpegts": "video/mp2t",
    "flv": "video/x-flv",
}


# The ISO-BMFF family (mp4, mov, avif) shares one libavformat format name; the brand tells them apart.
_AVIF_BRANDS = frozenset({"avif", "avis"})
_STILL_CODECS = frozenset({"png", "mjpeg", "webp", "gif", "bmp", "tiff", "av1"})


def _mime(format_name: str, brand: str, *, has_video: bool, has_audio: bool) -> str:
    if brand in _AVIF_BRANDS:
        return "image/avif"
    if brand == "qt":
        return "video/quicktime"
    mime = _CONTAINER_MIME.get(format_name, "application/octet-stream")
    if not has_video and has_audio and mime in ("video/mp4", "video/webm"):
        mime = mime.replace("video/", "audio/")
    return mime


@dataclass(frozen=True)
class VideoStream:
    codec: str
    width: int  # as stored, before rotation
    height: int
    fps: float | None
    rotation: int  # degrees clockwise the player must apply, 0/90/180/270

    @property
    def display_width(self) -> int:
        return self.height if self.rotation in (90, 270) else self.width

    @property
    def display_height(self) -> int:
        return self.width if self.rotation in (90, 270) else self.height


@dataclass(frozen=True)
class AudioStream:
    codec: str
    channels: int
    sample_rate: int | None


@dataclass(frozen=True)
class ProbeResult:
    """The facts about one input file that option handling and argv builders need."""

    format_name: str  # the demuxer that read it; ffmpeg is told to use the same one (``-f``)
    mime_type: str
    duration: float | None
    size: int
    video: VideoStream | None = None
    audio: AudioStream | None = None
    is_image: bool = False


def _video_stream(container: av.container.InputContainer, *, rotation: bool) -> VideoStream | None:
    for stream in container.streams.video:
        if av.stream.Disposition.attached_pic in stream.disposition:
            continue  # cover art in an audio file is not a video
        rate = stream.average_rate or stream.guessed_rate
        return VideoStream(
            codec=stream.codec_context.codec.canonical_name,
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            fps=round(float(rate), 3) if rate else None,
            rotation=_rotation(container, stream) if rotation else 0,
        )
    return None


def _rotation(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> int:
    """Degrees the player rotates the picture (the display matrix of the first frame)."""
    try:
        frame = next(container.decode(stream))
    except (StopIteration, av.error.FFmpegError):
        return 0
    return round(frame.rotation) % 360


def _head(path: Path) -> bytes:
    with path.open("rb") as file:
        return file.read(4096)


def _refused_container(logged: list[tuple[int, str, str]]) -> str:
    for _, context, message in logged:
        if message.startswith("Format not on whitelist"):
            return f"unsupported container: {context}"
    return "the input is not a media file that can be read"


def _audio_stream(container: av.container.InputContainer) -> AudioStream | None:
    for stream in container.streams.audio:
        return AudioStream(
            codec=stream.codec_context.codec.canonical_name,
            channels=stream.codec_context.channels,
            sample_rate=stream.codec_context.sample_rate or None,
        )
    return None


def probe_container(path: Path, *, rotation: bool = True) -> ProbeResult:
    """Describe an audio/video file with libavformat; InputError when it cannot be read.

    ``rotation=False`` skips decoding a frame to read the display rotation (for our own outputs,
    which ffmpeg writes upright with no display matrix).
    """
    refused = demuxers.refused_reason(_head(path))
    if refused is not None:
        raise InputError(refused)
    # libavformat reports the demuxer it detected but the whitelist refused only in a log line,
    # whose context name is that demuxer: capture this thread's error lines to name it.
    av.logging.set_level(av.logging.ERROR)
    with av.logging.Capture(local=True) as logged:
        try:
            with av.open(
                str(path), metadata_errors="ignore", container_options=demuxers.pyav_options()
            ) as container:
                video = _video_stream(container, rotation=rotation)
                audio = _audio_stream(container)
                format_name = container.format.name
                brand = str(container.metadata.get("major_brand", "")).strip()
                duration = container.duration / av.time_base if container.duration else None
        except av.error.ArgumentError:
            raise InputError(_refused_container(logged)) from None
        except (av.error.FFmpegError, UnicodeDecodeError, ValueError):
            raise InputError("the input is not a media file that can be read") from None
    if video is None and audio is None:
        raise InputError("the input has no audio or video stream")
    still_codec = video is not None and video.codec in _STILL_CODECS
    is_image = brand in _AVIF_BRANDS or (
        still_codec and (format_name.endswith("_pipe") or format_name == "gif")
    )
    return ProbeResult(
        format_name=format_name,
        mime_type=_mime(format_name, brand, has_video=video is not None, has_audio=audio is not None),
        duration=None if is_image or duration is None else round(duration, 6),
        size=path.stat().st_size,
        video=video,
        audio=audio,
        is_image=is_image,
    )


# Pillow format → (ffprobe-style codec name, MIME type) for still images it can describe; the
# formats it may open at all are demuxers.PILLOW_FORMATS.
_PILLOW_STILLS = {
    "PNG": ("png", "image/png"),
    "JPEG": ("mjpeg", "image/jpeg"),
    "MPO": ("mjpeg", "image/jpeg"),
    "WEBP": ("webp", "image/webp"),
    "GIF": ("gif", "image/gif"),
    "BMP": ("bmp", "image/bmp"),
    "TIFF": ("tiff", "image/tiff"),
    "AVIF": ("av1", "image/avif"),
}


def probe_still(path: Path) -> ProbeResult | None:
    """Describe a still image from its header with Pillow, or None for anything else.

    Starting ffprobe costs ~100 ms (mostly the dynamic loader), which dominated small image tasks;
    reading an image header costs well under a millisecond. Sizes are the stored ones, as libavformat
    reports them (EXIF orientation is applied later, when the image is processed).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path, formats=demuxers.PILLOW_FORMATS) as image:
                pillow_format = image.format or ""
                width, height = image.size
    except (OSError, Image.DecompressionBombError, ValueError, TypeError):
        return None  # not an image Pillow reads (or absurdly large): let libavformat decide
    codec, mime = _PILLOW_STILLS[pillow_format]
    video = VideoStream(codec=codec, width=width, height=height, fps=None, rotation=0)
    return ProbeResult(
        format_name=demuxers.PILLOW_DEMUXERS[pillow_format],
        mime_type=mime,
        duration=None,
        size=path.stat().st_size,
        video=video,
        is_image=True,
    )


async def probe(path: Path, *, rotation: bool = True) -> ProbeResult:
    """Probe a local file; raise InputError when it is not media that can be read."""
    still = await asyncio.to_thread(probe_still, path)
    if still is not None:
        return still
    return await asyncio.to_thread(probe_container, path, rotation=rotation)


def file_entry(probed: ProbeResult, *, kind: str, mime_type: str | None = None) -> tasks_pb2.FileEntry:
    """A task's ``inputs``/``outputs`` entry for a probed file (fields that apply only)."""
    entry = tasks_pb2.FileEntry(kind=kind, type=mime_type or probed.mime_type, filesize=probed.size)
    if probed.video is not None:
        entry.width = probed.video.display_width
        entry.height = probed.video.display_height
        entry.codec = probed.video.codec
        if probed.video.fps and not probed.is_image:
            entry.fps = probed.video.fps
    if probed.audio is not None:
        entry.audio_codec = probed.audio.codec
        entry.channels = probed.audio.channels
        if probed.video is None:
            entry.codec = probed.audio.codec
    if probed.duration is not None:
        entry.duration = round(probed.duration, 3)
    return entry
