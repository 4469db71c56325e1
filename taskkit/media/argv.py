"""The pieces every family's ffmpeg argv starts with: the fixed head and the untrusted input.

Every argv that opens a task's input goes through :func:`input_args`, so the demuxer the probe
chose and both whitelists are always given (docs/architecture.md, "Around ffmpeg").
"""

from __future__ import annotations

from pathlib import Path

from taskkit.media import demuxers
from taskkit.media.probe import ProbeResult


def base_argv(ffmpeg: str) -> list[str]:
    """The fixed head of every ffmpeg argv; the runner adds ``-progress pipe:1 -nostats``."""
    return [ffmpeg, "-hide_banner", "-nostdin", "-y", "-loglevel", "error"]


def seconds(value: float) -> str:
    """ffmpeg time argument with millisecond precision."""
    return f"{value:.3f}"


def input_args(src: Path, probe: ProbeResult, start: float, length: float | None) -> list[str]:
    """The untrusted input: the demuxer the probe chose (ffmpeg never re-detects) and both
    whitelists, ``-ss`` before ``-i`` (fast and, since we re-encode, frame-accurate), ``-t`` after."""
    args = demuxers.ffmpeg_input_args(probe.format_name)
    args += ["-ss", seconds(start)] if start > 0 else []
    args += ["-i", str(src)]
    if length is not None:
        args += ["-t", seconds(length)]
    return args
