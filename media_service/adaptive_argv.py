"""The one ffmpeg argv of an ``adaptive_video`` package (pure): decode once, encode every rung.

One process reads the input once; the decoded picture gets the top rung's layout (``width``/``height``/
``fit``), then ``split`` fans it out to one ``scale`` per lower rung, and every rung is encoded in the
same process. ffmpeg's DASH muxer writes CMAF-style fMP4 (one init segment and numbered media segments
per representation) and an MPD whose SegmentTimeline gives every segment's exact duration; the HLS
playlists are written from that timeline afterwards (``media_service/packaging.py``), so ``hls``,
``dash`` and ``cmaf`` share one set of segments.

Keyframes: every ``keyint`` seconds (at most 2 s, and a divisor of the segment duration, so every
segment boundary is one), forced from the presentation time so all rungs cut at the same instants;
scene-cut keyframes and open GOPs are off, so every segment starts with an IDR frame.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path
from typing import Final

from media_service.ladder import Rung
from media_service.options import AdaptiveOptions
from taskkit.media import Layout, ProbeResult, audio_bitrate, base_argv, ffmpeg_filters, input_args

MPD_NAME: Final = "manifest.mpd"
INIT_TEMPLATE: Final = "init-$RepresentationID$.mp4"
MEDIA_TEMPLATE: Final = "seg-$RepresentationID$-$Number%05d$.m4s"
MAX_FPS: Final = 60.0
AUDIO_CHANNELS: Final = 2
AUDIO_RATE: Final = 48_000
_PEAK: Final = 1.1  # maxrate over the average (Apple: peak within 110 % for constrained VBR)
_BUFFER: Final = 2.0  # VBV buffer, in seconds of the average rate


def keyframe_interval(segment_duration: float) -> float:
    """The largest interval ≤ 2 s that divides ``segment_duration`` into whole parts."""
    return segment_duration / math.ceil(segment_duration / 2.0)


def frame_rate(probe: ProbeResult) -> float:
    fps = probe.video.fps if probe.video is not None and probe.video.fps else 30.0
    return min(fps, MAX_FPS)


def _encoder(codec: str, gop: int) -> list[str]:
    """Encoder options shared by every rung (per-rung bitrates are added separately)."""
    if codec == "h265":
        params = f"keyint={gop}:min-keyint={gop}:scenecut=0:open-gop=0:log-level=error"
        return ["-c:v", "libx265", "-preset", "veryfast", "-x265-params", params, "-tag:v", "hvc1"]
    if codec == "av1":
        return ["-c:v", "libsvtav1", "-preset", "8", "-g", str(gop), "-svtav1-params", "scd=0"]
    return [
        "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high",
        "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0", "-x264-params", "open_gop=0",
    ]  # fmt: skip


def _sar(rung: Rung, layout: Layout) -> str:
    """The pixel aspect that gives a rung exactly the top rung's display aspect: even widths cannot
    always keep it (16:9 at 240 lines is 426.67 pixels wide), and a DASH AdaptationSet (and a player
    switching rungs) needs one picture aspect across its representations."""
    sar = Fraction(layout.width * rung.height, layout.height * rung.width)
    return f"{sar.numerator}/{sar.denominator}"


def filter_graph(rungs: list[Rung], layout: Layout, background: str | None, fps: float) -> str:
    """``[0:v]`` → constant frame rate → the top rung's layout → split → one output ``[v<i>]`` per
    rung, the lower ones scaled from the laid-out picture (so every rung has the same framing)."""
    labels = "".join(f"[s{i}]" for i in range(len(rungs)))
    head = [
        f"fps={fps:g}",
        *ffmpeg_filters(layout, background=background, alpha=False),
        f"split={len(rungs)}",
    ]
    chains = ["[0:v]" + ",".join(head) + labels]
    for i, rung in enumerate(rungs):
        steps = ["format=yuv420p"]
        if (rung.width, rung.height) != (layout.width, layout.height):
            sar = f"setsar=sar={_sar(rung, layout)}:max=65535"  # max: setsar reduces to /100 otherwise
            steps = [f"scale={rung.width}:{rung.height}:flags=bicubic", sar, *steps]
        chains.append(f"[s{i}]" + ",".join(steps) + f"[v{i}]")
    return ";".join(chains)


def build_adaptive_argv(
    src: Path,
    out_dir: Path,
    opts: AdaptiveOptions,
    probe: ProbeResult,
    rungs: list[Rung],
    layout: Layout | None,
    *,
    ffmpeg: str = "ffmpeg",
) -> list[str]:
    """The argv that writes the whole package's segments and ``manifest.mpd`` into ``out_dir``.

    ``rungs`` empty (with ``layout`` None) means an audio-only package; ``probe.audio`` None means
    a package without audio.
    """
    start, length = opts.clip()
    argv = base_argv(ffmpeg) + input_args(src, probe, start, length)
    sets: list[str] = []
    if rungs:
        assert layout is not None
        fps = frame_rate(probe)
        interval = keyframe_interval(opts.segment_duration)
        gop = max(1, math.ceil(fps * interval - 1e-6))
        argv += ["-filter_complex", filter_graph(rungs, layout, opts.background, fps)]
        for i in range(len(rungs)):
            argv += ["-map", f"[v{i}]"]
        argv += _encoder(opts.codec, gop)
        argv += ["-force_key_frames", f"expr:gte(t,n_forced*{interval:g})"]
        for i, rung in enumerate(rungs):
            argv += [
                f"-b:v:{i}", str(rung.bitrate),
                f"-maxrate:v:{i}", str(round(rung.bitrate * _PEAK)),
                f"-bufsize:v:{i}", str(round(rung.bitrate * _BUFFER)),
            ]  # fmt: skip
        sets.append("id=0,streams=v")
    if probe.audio is not None:
        argv += ["-map", "0:a:0", "-c:a", "aac", "-b:a", str(audio_bitrate("aac", opts.quality))]
        argv += ["-ac", str(AUDIO_CHANNELS), "-ar", str(AUDIO_RATE)]
        sets.append(f"id={len(sets)},streams=a")
    argv += ["-map_metadata", "-1", "-map_chapters", "-1"]
    argv += [
        "-f", "dash", "-dash_segment_type", "mp4", "-seg_duration", f"{opts.segment_duration:g}",
        "-use_template", "1", "-use_timeline", "1",
        "-init_seg_name", INIT_TEMPLATE, "-media_seg_name", MEDIA_TEMPLATE,
        "-adaptation_sets", " ".join(sets),
        str(out_dir / MPD_NAME),
    ]  # fmt: skip
    return argv
