"""ffprobe-based probing: what the worker learns about an input before processing it."""

from __future__ import annotations

import asyncio
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image
from transmute.tasks.v1 import tasks_pb2

from taskkit.errors import InputError

_PROBE_TIMEOUT_S = 30.0

# ffprobe format names -> MIME types for the formats we accept as inputs.
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
    "image2": "image/jpeg",
}


# The ISO-BMFF family (mp4, mov, avif) shares one ffprobe format name; the brand tells them apart.
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

    format_name: str
    mime_type: str
    duration: float | None
    size: int
    video: VideoStream | None = None
    audio: AudioStream | None = None
    is_image: bool = False
    streams: tuple[str, ...] = field(default_factory=tuple)


def _rotation(stream: dict) -> int:
    rotation = 0
    tags = stream.get("tags") or {}
    if "rotate" in tags:
        rotation = int(float(tags["rotate"]))
    for side in stream.get("side_data_list") or []:
        if "rotation" in side:
            # Display matrix rotation is counter-clockwise; players rotate clockwise by -value.
            rotation = -int(float(side["rotation"]))
    return rotation % 360


def _fps(stream: dict) -> float | None:
    for key in ("avg_frame_rate", "r_frame_rate"):
        num, _, den = str(stream.get(key, "0/0")).partition("/")
        try:
            value = float(num) / float(den or 1)
        except (ValueError, ZeroDivisionError):
            continue
        if value > 0:
            return round(value, 3)
    return None


def parse_probe(data: dict, size: int) -> ProbeResult:
    """Turn ffprobe's JSON into a ProbeResult (pure; unit-tested on canned JSON)."""
    fmt = data.get("format") or {}
    format_name = str(fmt.get("format_name", ""))
    video = audio = None
    kinds = []
    for stream in data.get("streams") or []:
        kind = stream.get("codec_type")
        kinds.append(str(kind))
        disposition = stream.get("disposition") or {}
        if kind == "video" and video is None and not disposition.get("attached_pic"):
            video = VideoStream(
                codec=str(stream.get("codec_name", "")),
                width=int(stream.get("width") or 0),
                height=int(stream.get("height") or 0),
                fps=_fps(stream),
                rotation=_rotation(stream),
            )
        elif kind == "audio" and audio is None:
            audio = AudioStream(
                codec=str(stream.get("codec_name", "")),
                channels=int(stream.get("channels") or 0),
                sample_rate=int(stream["sample_rate"]) if stream.get("sample_rate") else None,
            )
    brand = str((fmt.get("tags") or {}).get("major_brand", "")).strip()
    still_codec = video is not None and video.codec in _STILL_CODECS
    is_image = brand in _AVIF_BRANDS or (
        still_codec and (format_name.endswith("_pipe") or format_name in ("image2", "gif"))
    )
    duration = fmt.get("duration")
    mime = _mime(format_name, brand, has_video=video is not None, has_audio=audio is not None)
    return ProbeResult(
        format_name=format_name,
        mime_type=mime,
        duration=None if is_image or duration in (None, "N/A") else float(duration),
        size=size,
        video=video,
        audio=audio,
        is_image=is_image,
        streams=tuple(kinds),
    )


# Pillow format → (ffprobe-style codec name, MIME type) for still images it can describe.
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
    reading an image header costs well under a millisecond. Sizes are the stored ones, as ffprobe
    reports them (EXIF orientation is applied later, when the image is processed).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                known = _PILLOW_STILLS.get(image.format or "")
                if known is None:
                    return None
                width, height = image.size
    except (OSError, Image.DecompressionBombError, ValueError):
        return None  # not an image Pillow reads (or absurdly large): let ffprobe decide
    codec, mime = known
    video = VideoStream(codec=codec, width=width, height=height, fps=None, rotation=0)
    return ProbeResult(
        format_name=f"{codec}_pipe",
        mime_type=mime,
        duration=None,
        size=path.stat().st_size,
        video=video,
        is_image=True,
        streams=("video",),
    )


async def probe(path: Path, *, ffprobe: str = "ffprobe") -> ProbeResult:
    """Probe a local file; raise InputError when it is not media that can be read."""
    still = await asyncio.to_thread(probe_still, path)
    if still is not None:
        return still
    proc = await asyncio.create_subprocess_exec(
        ffprobe,
        "-v",
        "error",
        "-print_format",
        "json",
        "-show_format",
        "-show_streams",
        str(path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=_PROBE_TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise InputError("the input could not be probed within 30 seconds") from None
    if proc.returncode != 0:
        raise InputError("the input is not a media file that can be read")
    result = parse_probe(json.loads(out or b"{}"), path.stat().st_size)
    if result.video is None and result.audio is None:
        raise InputError("the input has no audio or video stream")
    return result


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
