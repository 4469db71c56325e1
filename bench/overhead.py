"""API overhead on a real transcode: a ``video`` task through the stack vs. the same ffmpeg run directly.

``python -m bench.overhead [--rounds N] [--wait sse|poll]``

Generates a 10 s 1080p30 h264+aac clip, starts the stack in a temp dir and serves the clip from a
local origin. Each round runs (a) a ``video`` task to 720p h264 (``{"height": 720}``), timed from
the moment the POST is sent until the client sees ``task.succeeded``, then (b) the identical ffmpeg
argv (built by the worker's own pure builder from the same options and probe) run directly with
:mod:`subprocess`. The last line is ``ratio <median api / median direct>``; the goal is <= 1.05.
"""

from __future__ import annotations

import asyncio
import resource
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from bench import (
    api_client,
    bench_parser,
    bench_run,
    cpu_delta,
    create_task,
    emit,
    load_average,
    running_stack,
    stack_cpu_seconds,
    task_marks,
    wait_done,
)
from media_service.options import parse_video_options
from media_service.video_argv import build_video_argv
from taskkit.media import probe
from tests.support import Origin, make_hd_clip

OPTIONS: dict[str, Any] = {"height": 720}


def direct_argv(clip: Path, dst: Path) -> list[str]:
    """The ffmpeg argv the worker builds for ``OPTIONS`` on ``clip``, writing ``dst``."""
    probed = asyncio.run(probe(clip))
    return build_video_argv(clip, dst, parse_video_options(OPTIONS), probed, ffmpeg="ffmpeg")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_direct(argv: list[str]) -> tuple[float, float]:
    """Run ``argv`` to completion; return its (wall, CPU) seconds."""
    cpu_before = _children_cpu()
    started = time.perf_counter()
    subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, check=True)
    return time.perf_counter() - started, _children_cpu() - cpu_before


def main(argv: list[str] | None = None) -> None:
    parser = bench_parser("overhead", __doc__)
    parser.add_argument("--rounds", type=int, default=3, help="api/direct pairs to run (default 3)")
    parser.add_argument(
        "--wait",
        choices=("sse", "poll"),
        default="sse",
        help="how the client learns the task finished: the SSE stream (default) or polling every 20 ms",
    )
    args = parser.parse_args(argv)

    with bench_run("overhead") as tmp:
        emit("generating a 10 s 1920x1080 30 fps h264+aac clip ...")
        clip = make_hd_clip(tmp / "media")
        emit(f"clip: {clip.name}, {clip.stat().st_size / 1e6:.1f} MB")
        cmd = direct_argv(clip, tmp / "direct.mp4")
        emit("direct argv: " + " ".join(cmd))
        emit(f"api task: kind video, options {OPTIONS}; completion seen via {args.wait}")

        api_times: list[float] = []
        direct_times: list[float] = []
        api_cpu: list[float] = []
        direct_cpu: list[float] = []
        with Origin(clip.parent) as origin, running_stack(tmp / "stack") as stack:
            url = origin.url(clip.name)
            with api_client(stack, timeout=600.0) as client:
                for round_no in range(1, args.rounds + 1):
                    cpu_before = stack_cpu_seconds(stack)
                    started = time.perf_counter()
                    task = create_task(client, "video", url, OPTIONS)
                    done = wait_done(client, task["id"], args.wait)
                    api_s = time.perf_counter() - started
                    if done["status"] != "succeeded":
                        raise RuntimeError(f"task {task['id']} ended {done['status']}: {done.get('error')}")
                    api_cpu.append(sum(cpu_delta(cpu_before, stack_cpu_seconds(stack)).values()))
                    direct_s, direct_cpu_s = run_direct(cmd)
                    direct_cpu.append(direct_cpu_s)
                    api_times.append(api_s)
                    direct_times.append(direct_s)
                    emit(
                        f"round {round_no}: api {api_s:.3f} s  direct {direct_s:.3f} s  "
                        f"ratio {api_s / direct_s:.3f}  | cpu api {api_cpu[-1]:.2f} s  "
                        f"direct {direct_cpu_s:.2f} s  (task {task['id']}; {load_average()})"
                    )
            marks = task_marks(stack.config.root / "logs" / "media.log")

        emit("")
        emit("server-side phases per task (from logs/media.log, seconds):")
        for task_id, mark in marks.items():
            if mark.created and mark.started and mark.finished:
                emit(
                    f"  {task_id}: created->started {mark.started - mark.created:.3f}  "
                    f"started->succeeded {mark.finished - mark.started:.3f}"
                )
    emit(
        f"min api {min(api_times):.3f} s  min direct {min(direct_times):.3f} s  "
        f"min ratio {min(api_times) / min(direct_times):.3f}"
    )
    cpu_api, cpu_direct = statistics.median(api_cpu), statistics.median(direct_cpu)
    emit(
        f"median cpu api {cpu_api:.2f} s  direct {cpu_direct:.2f} s  "
        f"cpu ratio {cpu_api / cpu_direct:.3f} "
        "(all stack processes incl. ffmpeg vs. the direct ffmpeg; robust to other load)"
    )
    api_median = statistics.median(api_times)
    direct_median = statistics.median(direct_times)
    emit(f"median api {api_median:.3f} s")
    emit(f"median direct {direct_median:.3f} s")
    emit(f"median overhead {api_median - direct_median:+.3f} s")
    emit(f"ratio {api_median / direct_median:.3f}")


if __name__ == "__main__":
    main()
