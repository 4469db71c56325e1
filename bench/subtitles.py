"""What a ``subtitles`` task costs over the ``speech`` task it is built on, on the same file.

``python -m bench.subtitles [--rounds N]``

Speaks a ~50 s monologue with espeak-ng and starts the stack (intelligence_service with one task
at a time, tracks_service beside it). Each round runs (a) a ``speech`` task with word timings (what
a subtitles task asks its child for) and then (b) a ``subtitles`` task, each on its own copy of the
audio that differs only in a metadata tag, so the transcript cache never answers and both
transcribe. Both are timed from the POST until ``task.succeeded`` on the SSE stream; (b) includes
creating and following the child task over gRPC, fetching the input once more from storage and
building the cues. A warm-up speech task is not counted. The last line is
``ratio <median subtitles / median speech>``; the goal is <= 1.05.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import httpx

from bench import (
    api_client,
    bench_parser,
    bench_run,
    create_task,
    emit,
    load_average,
    running_stack,
    wait_done,
)
from bench.speech import monologue, one_task_at_a_time, variant
from tests.support import Origin


def run(client: httpx.Client, kind: str, url: str, options: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    done = wait_done(client, create_task(client, kind, url, options)["id"], "sse")
    elapsed = time.perf_counter() - started
    if done["status"] != "succeeded" or done.get("cache_hit"):
        raise RuntimeError(f"{kind} task {done['id']} ended {done['status']}: {done.get('error')}")
    return elapsed, done


def main(argv: list[str] | None = None) -> None:
    parser = bench_parser("subtitles", __doc__)
    parser.add_argument("--rounds", type=int, default=3, help="speech/subtitles pairs to run (default 3)")
    args = parser.parse_args(argv)

    with bench_run("subtitles") as tmp:
        media = tmp / "media"
        clip, seconds = monologue(media)
        env = one_task_at_a_time(tmp / "models")

        speech_times: list[float] = []
        subtitles_times: list[float] = []
        with Origin(media) as origin, running_stack(tmp / "stack", env, intelligence=True) as stack:
            with api_client(stack, timeout=900.0) as client:
                run(client, "speech", origin.url(clip.name), {})  # loads the model's caches
                for round_no in range(1, args.rounds + 1):
                    speech_s, _ = run(client, "speech", origin.url(variant(clip, 2 * round_no).name), {})
                    source = variant(clip, 2 * round_no + 1)
                    subtitles_s, done = run(client, "subtitles", origin.url(source.name), {})
                    (child,) = client.get("/tasks", params={"parent_id": done["id"]}).json()
                    if child["cache_hit"]:
                        raise RuntimeError("the subtitles task's speech child hit the cache")
                    speech_times.append(speech_s)
                    subtitles_times.append(subtitles_s)
                    emit(
                        f"round {round_no}: speech {speech_s:.3f} s  subtitles {subtitles_s:.3f} s  "
                        f"ratio {subtitles_s / speech_s:.3f}  ({load_average()})"
                    )

    speech_median = statistics.median(speech_times)
    subtitles_median = statistics.median(subtitles_times)
    emit(f"median speech {speech_median:.3f} s (real-time factor {speech_median / seconds:.3f})")
    emit(f"median subtitles {subtitles_median:.3f} s")
    emit(f"ratio {subtitles_median / speech_median:.3f}")


if __name__ == "__main__":
    main()
