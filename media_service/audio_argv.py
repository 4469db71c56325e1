"""The ffmpeg argv for an ``audio`` task (pure).

Containers, one per format (the table below is the only place they are named):

| format | encoder     | container (muxer)        | extension | MIME       |
|--------|-------------|--------------------------|-----------|------------|
| mp3    | libmp3lame  | MP3 (``mp3``)            | .mp3      | audio/mpeg |
| aac    | aac         | MPEG-4 audio (``ipod``)  | .m4a      | audio/mp4  |
| ogg    | libvorbis   | Ogg (``ogg``)            | .ogg      | audio/ogg  |
| opus   | libopus     | Ogg Opus (``opus``)      | .opus     | audio/ogg  |
| wav    | pcm_s16le   | WAVE (``wav``)           | .wav      | audio/wav  |
| flac   | flac        | FLAC (``flac``)          | .flac     | audio/flac |

aac goes into an .m4a (``ipod`` muxer, index at the front) rather than raw ADTS ``.aac``: it seeks,
carries its duration and plays in every browser. Only the first audio stream is used; more than two
channels are downmixed to stereo; metadata (tags, cover art) is dropped. The bitrate is the given
``bitrate`` or the quality table's value for the codec; wav and flac are lossless and take neither.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from media_service.options import AudioOptions
from media_service.video_argv import check_start
from taskkit.errors import InputError
from taskkit.media import ProbeResult, audio_bitrate, base_argv, input_args


@dataclass(frozen=True)
class _AudioFormat:
    extension: str
    mime: str
    muxer: str
    encoder: str
    table: str | None  # quality-table column for the bitrate; None for lossless


_FORMATS: Final = {
    "mp3": _AudioFormat(".mp3", "audio/mpeg", "mp3", "libmp3lame", "mp3"),
    "aac": _AudioFormat(".m4a", "audio/mp4", "ipod", "aac", "aac"),
    "ogg": _AudioFormat(".ogg", "audio/ogg", "ogg", "libvorbis", "vorbis"),
    "opus": _AudioFormat(".opus", "audio/ogg", "opus", "libopus", "opus"),
    "wav": _AudioFormat(".wav", "audio/wav", "wav", "pcm_s16le", None),
    "flac": _AudioFormat(".flac", "audio/flac", "flac", "flac", None),
}


def output_extension(fmt: str) -> str:
    """File extension (with the dot) of an audio output format."""
    return _FORMATS[fmt].extension


def output_mime(fmt: str) -> str:
    """MIME type of an audio output format."""
    return _FORMATS[fmt].mime


def build_audio_argv(
    src: Path, dst: Path, opts: AudioOptions, probe: ProbeResult, *, ffmpeg: str = "ffmpeg"
) -> list[str]:
    """The complete ffmpeg argv that turns ``src`` (audio or video) into the ``audio`` output ``dst``."""
    if probe.audio is None:
        raise InputError("the input has no audio stream")
    start, length = opts.clip()
    check_start(start, probe)
    spec = _FORMATS[opts.format]
    argv = base_argv(ffmpeg) + input_args(src, probe, start, length)
    argv += ["-map", "0:a:0", "-vn", "-map_metadata", "-1", "-map_chapters", "-1", "-c:a", spec.encoder]
    if spec.table is not None:
        argv += ["-b:a", str(opts.bitrate or audio_bitrate(spec.table, opts.quality))]
    if probe.audio.channels > 2:
        argv += ["-ac", "2"]
    if spec.muxer == "ipod":
        argv += ["-movflags", "+faststart"]
    return [*argv, "-f", spec.muxer, str(dst)]
