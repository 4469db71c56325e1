"""``thumbnails`` through the API vs. its ffmpeg argv run directly, and vs. one ffmpeg per frame.

``python -m bench.thumbnails [--rounds N]``

Generates a 60 s 720p30 h264+aac clip, starts the stack in a temp dir and serves the clip from a
local origin. Each round runs (a) a ``thumbnails`` task with the default options (a frame a
second, 160 px wide tiles, one 10x6 sheet), timed from sending the POST until the client sees
``task.succeeded`` on the SSE stream — fetch, probe, the one ffmpeg pass, storyboards, upload,
record — and (b) the identical ffmpeg argv (built by the worker's own pure ``plan`` and
``build_argv``) run directly, alternating which goes first. A warm-up task (the first one a fresh
worker runs) is not counted. At the end, once, (c) the naive way: one ffmpeg process per frame
(seek, decode one frame, scale, write a JPEG), without even assembling the sheet. The last line is
``ratio <median api / median direct>``; the goal is <= 1.05.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path

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
from taskkit.media import ProbeResult, base_argv, input_args, probe, seconds
from tests.support import Origin, make_hd_clip
from tracks_service.options import parse_thumbnails_options
from tracks_service.storyboard import Storyboard
from tracks_service.thumbnails import build_argv, plan

CLIP_SECONDS = 60


def per_frame_argvs(clip: Path, probed: ProbeResult, board: Storyboard, out: Path) -> list[list[str]]:
    """The naive way: a process per tile, each seeking to the tile's start and writing one frame."""
    scale = f"scale={board.tile_width}:{board.tile_height}"
    return [
        [
            *base_argv("ffmpeg"),
            *input_args(clip, probed, tile.start, None),
            *["-frames:v", "1", "-vf", scale, "-q:v", "5", str(out / f"frame_{tile.index}.jpg")],
        ]
        for tile in board.tiles
    ]


def main(argv: list[str] | None = None) -> None:
    parser = bench_parser("thumbnails", __doc__)
    parser.add_argument("--rounds", type=int, default=5, help="api/direct pairs to run (default 5)")
    args = parser.parse_args(argv)

    with bench_run("thumbnails") as tmp:
        emit(f"generating a {CLIP_SECONDS} s 1280x720 30 fps h264+aac clip ...")
        clip = make_hd_clip(tmp / "media", seconds=CLIP_SECONDS, width=1280, height=720)
        probed = asyncio.run(probe(clip))
        opts = parse_thumbnails_options({})
        board = plan(opts, probed)
        direct = build_argv(opts, clip, probed, board, tmp / "direct", ffmpeg="ffmpeg")
        naive = per_frame_argvs(clip, probed, board, tmp / "naive")
        emit("direct argv: " + " ".join(direct))
        emit(
            f"plan: {board.frames} tiles of {board.tile_width}x{board.tile_height} "
            f"on {len(board.sheets)} sheet(s)"
        )
        emit(
            f"naive: {len(naive)} ffmpeg processes (one per frame, e.g. -ss {seconds(board.tiles[-1].start)})"
        )

        api_times: list[float] = []
        direct_times: list[float] = []
        naive_times: list[float] = []
        # tracks_service runs beside intelligence_service in the stack (its other kinds need it).
        with Origin(clip.parent) as origin, running_stack(tmp / "stack", intelligence=True) as stack:
            url = origin.url(clip.name)
            with api_client(stack, timeout=600.0) as client:
                warm = wait_done(client, create_task(client, "thumbnails", url, {})["id"], "sse")
                if warm["status"] != "succeeded":
                    raise RuntimeError(f"warm-up task ended {warm['status']}: {warm.get('error')}")
                for round_no in range(1, args.rounds + 1):
                    # Alternate which goes first, so neither always runs on a warmer machine.
                    direct_first = round_no % 2 == 0
                    if direct_first:
                        direct_s = timed_argvs([direct], tmp / "direct")
                    started = time.perf_counter()
                    task = create_task(client, "thumbnails", url, {})
                    done = wait_done(client, task["id"], "sse")
                    api_s = time.perf_counter() - started
                    if done["status"] != "succeeded":
                        raise RuntimeError(f"task {task['id']} ended {done['status']}: {done.get('error')}")
                    if not direct_first:
                        direct_s = timed_argvs([direct], tmp / "direct")
                    api_times.append(api_s)
                    direct_times.append(direct_s)
                    emit(
                        f"round {round_no}: api {api_s:.3f} s  direct {direct_s:.3f} s  "
                        f"ratio {api_s / direct_s:.3f}  ({load_average()})"
                    )
        # The naive way last, once: 20 s of 60 processes between rounds would heat the machine
        # unevenly for whichever of api and direct ran next.
        naive_times.append(timed_argvs(naive, tmp / "naive"))

    api_median = statistics.median(api_times)
    direct_median = statistics.median(direct_times)
    naive_median = statistics.median(naive_times)
    emit(
        f"median naive (one ffmpeg per frame) {naive_median:.3f} s: "
        f"one pass is {naive_median / direct_median:.2f}x faster"
    )
    emit(f"median api {api_median:.3f} s")
    emit(f"median direct {direct_median:.3f} s")
    emit(f"ratio {api_median / direct_median:.3f}")


if __name__ == "__main__":
    main()
