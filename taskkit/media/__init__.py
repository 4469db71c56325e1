"""ffmpeg and what surrounds it: the sandboxed runner, argv helpers, probe, the demuxer
allowlist, checks on what ffmpeg leaves in its output folders, output geometry, quality levels
and frame selection.
"""

from taskkit.media.argv import base_argv, input_args, seconds
from taskkit.media.ffmpeg import run_ffmpeg
from taskkit.media.geometry import (
    DEFAULT_MAX_PIXELS,
    MAX_DIMENSION,
    POSITION_ANCHORS,
    Fit,
    Layout,
    Length,
    Percent,
    apply_layout,
    compute_layout,
    ffmpeg_filters,
    target_size,
)
from taskkit.media.probe import ProbeResult, file_entry, probe
from taskkit.media.quality import (
    DEFAULT_QUALITY,
    QUALITY_LEVELS,
    audio_bitrate,
    image_quality,
    mjpeg_qscale,
    video_crf,
)
from taskkit.media.sandbox import Identity, Sandbox
from taskkit.media.sandbox_files import check_regular
from taskkit.media.scenes import parse_times, scene_cuts_argv
from taskkit.media.timecodes import cue_time

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_QUALITY",
    "MAX_DIMENSION",
    "POSITION_ANCHORS",
    "QUALITY_LEVELS",
    "Fit",
    "Identity",
    "Layout",
    "Length",
    "Percent",
    "ProbeResult",
    "Sandbox",
    "apply_layout",
    "audio_bitrate",
    "base_argv",
    "check_regular",
    "compute_layout",
    "cue_time",
    "ffmpeg_filters",
    "file_entry",
    "image_quality",
    "input_args",
    "mjpeg_qscale",
    "parse_times",
    "probe",
    "run_ffmpeg",
    "scene_cuts_argv",
    "seconds",
    "target_size",
    "video_crf",
]
