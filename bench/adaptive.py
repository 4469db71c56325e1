"""``adaptive_video`` through the API vs. its ffmpeg argv run directly, and vs. one ffmpeg per rung.

``python -m bench.adaptive [--rounds N]``

Generates a 10 s 1080p30 h264+aac clip, starts the stack in a temp dir and serves the clip from a
local origin. Each round runs (a) an ``adaptive_video`` task (HLS, the automatic 1080p ladder of 5
rungs), timed from sending the POST until the client sees ``task.succeeded`` on the SSE stream —
fetch, probe, encode, playlists, upload of every segment, record — then (b) the identical ffmpeg
argv (built by the worker's own pure ``plan`` and ``build_adaptive_argv``) run directly, then (c)
the naive way: one ffmpeg process per rung plus one for the audio, each decoding the input again.
The last line is ``ratio <median api / median direct>``; the goal is <= 1.05.
"""

from __future__ import annotations

import asyncio
import dataclasses
import statistics
import time
from pathlib import Path
from typing import Any

from bench import (
    api_client,
    bench_parser,
    bench_run,
    create_task,
    emit,
    load_average,
    running_stack,
    timed_argvs,
    wait_done,
)
from media_service.adaptive import plan
from media_service.adaptive_argv import build_adaptive_argv
from media_service.options import parse_adaptive_options
from taskkit.media import ProbeResult, probe
from tests.support import Origin, make_hd_clip

OPTIONS: dict[str, Any] = {"format": "hls"}


def one_decode_argv(clip: Path, probed: ProbeResult, out: Path) -> list[str]:
    """The argv the worker builds for ``OPTIONS`` on ``clip``: every rung from one decode."""
    opts = parse_adaptive_options(OPTIONS)
    layout, rungs = plan(opts, probed)
    return build_adaptive_argv(clip, out, opts, probed, rungs, layout)


def per_rung_argvs(clip: Path, probed: ProbeResult, out: Path) -> list[list[str]]:
    """The naive way: the same encodes, but one process (and one decode) per rung, audio apart."""
    opts = parse_adaptive_options(OPTIONS)
    layout, rungs = plan(opts, probed)
    silent = dataclasses.replace(probed, audio=None)
    argvs = [
        build_adaptive_argv(clip, out / f"rung{i}", opts, silent, [rung], layout)
        for i, rung in enumerate(rungs)
    ]
    audio_only = dataclasses.replace(probed, video=None)
    argvs.append(build_adaptive_argv(clip, out / "audio", opts, audio_only, [], None))
    return argvs


def main(argv: list[str] | None = None) -> None:
    parser = bench_parser("adaptive", __doc__)
    parser.add_argument("--rounds", type=int, default=3, help="api/direct/naive triples to run (default 3)")
    args = parser.parse_args(argv)

    with bench_run("adaptive") as tmp:
        emit("generating a 10 s 1920x1080 30 fps h264+aac clip ...")
        clip = make_hd_clip(tmp / "media")
        probed = asyncio.run(probe(clip))
        direct = one_decode_argv(clip, probed, tmp / "direct")
        naive = per_rung_argvs(clip, probed, tmp / "naive")
        emit("direct argv: " + " ".join(direct))
        emit(f"naive: {len(naive)} ffmpeg processes (one per rung, one for the audio)")

        api_times: list[float] = []
        direct_times: list[float] = []
        naive_times: list[float] = []
        with Origin(clip.parent) as origin, running_stack(tmp / "stack") as stack:
            url = origin.url(clip.name)
            with api_client(stack, timeout=900.0) as client:
                for round_no in range(1, args.rounds + 1):
                    started = time.perf_counter()
                    task = create_task(client, "adaptive_video", url, OPTIONS)
                    done = wait_done(client, task["id"], "sse")
                    api_s = time.perf_counter() - started
                    if done["status"] != "succeeded":
                        raise RuntimeError(f"task {task['id']} ended {done['status']}: {done.get('error')}")
                    direct_s = timed_argvs([direct], tmp / "direct")
                    naive_s = timed_argvs(naive, tmp / "naive")
                    api_times.append(api_s)
                    direct_times.append(direct_s)
                    naive_times.append(naive_s)
                    renditions = len(done["outputs"][0]["renditions"])
                    emit(
                        f"round {round_no}: api {api_s:.3f} s  direct {direct_s:.3f} s  "
                        f"naive {naive_s:.3f} s  ratio {api_s / direct_s:.3f}  "
                        f"({renditions} renditions; {load_average()})"
                    )

    api_median = statistics.median(api_times)
    direct_median = statistics.median(direct_times)
    naive_median = statistics.median(naive_times)
    emit(
        f"median naive (one ffmpeg per rung) {naive_median:.3f} s: "
        f"one decode is {naive_median / direct_median:.2f}x faster"
    )
    emit(f"median api {api_median:.3f} s")
    emit(f"median direct {direct_median:.3f} s")
    emit(f"ratio {api_median / direct_median:.3f}")


if __name__ == "__main__":
    main()
