"""Frame selection with ffmpeg (pure argv builders and the parser of what they print), shared by
every family that needs shots.

Both run the untrusted input through ``input_args`` (demuxer allowlist) and write the selected
frames' times with the ``metadata`` filter to a text file in the work dir (a handler runs them
with ``taskkit.runtime.scene_cuts``):

- scene cuts for ``outline`` and ``summary``: ``scdet`` on a small copy of the picture;
- frames for ``nsfw``: one per second plus every scene change (``select``), scaled by ffmpeg
  straight to the model's 256×256 input and written as raw RGB.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from taskkit.media.argv import base_argv, input_args
from taskkit.media.probe import ProbeResult

SCENE_THRESHOLD: Final = 0.3  # select's scene score (0-1) above which a frame starts a new shot
SCDET_THRESHOLD: Final = 10.0  # scdet's score (0-100)
NSFW_SIDE: Final = 256
_PTS_TIME = re.compile(r"pts_time:(-?[0-9.]+)")


def scene_cuts_argv(src: Path, probe: ProbeResult, times: str, *, ffmpeg: str) -> list[str]:
    """Decode the first video stream once, small, and print the time of every scene cut."""
    graph = f"scale=320:-2,scdet=threshold={SCDET_THRESHOLD:g}:sc_pass=1,metadata=mode=print:file={times}"
    return [
        *base_argv(ffmpeg),
        *input_args(src, probe, 0.0, None),
        "-map",
        "0:v:0",
        "-an",
        "-sn",
        "-vf",
        graph,
        "-f",
        "null",
        "-",
    ]


def nsfw_frames_argv(
    src: Path, probe: ProbeResult, frames: str, times: str, *, max_frames: int, ffmpeg: str
) -> list[str]:
    """At most ``max_frames`` frames, one per second and each scene change, as raw 256×256 RGB24."""
    # 0.999, not 1: frame times are floats, and 32.6667 - 31.6667 can come out just under 1.
    select = f"select='isnan(prev_selected_t)+gte(t-prev_selected_t\\,0.999)+gt(scene\\,{SCENE_THRESHOLD})'"
    graph = f"{select},scale={NSFW_SIDE}:{NSFW_SIDE}:flags=bilinear,metadata=mode=print:file={times}"
    return [
        *base_argv(ffmpeg),
        *input_args(src, probe, 0.0, None),
        *["-map", "0:v:0", "-an", "-sn", "-vf", graph, "-fps_mode", "vfr", "-frames:v", str(max_frames)],
        *["-pix_fmt", "rgb24", "-f", "rawvideo", frames],
    ]


def parse_times(printed: str) -> list[float]:
    """The ``pts_time`` of every frame the metadata filter printed, in order."""
    return [float(match) for match in _PTS_TIME.findall(printed)]
