"""End-to-end latency of a tiny task: a 64x64 PNG resized to 32x32 through the whole stack.

``python -m bench.latency [--tasks N] [--concurrency C] [--wait sse|poll] [--warmup W]``

Starts the stack in a temp dir, serves the test corpus's 64x64 PNG from a local origin and runs
``--tasks`` ``image`` tasks (``{"width": 32, "height": 32}``), one at a time by default or ``C`` at
once. Each latency runs from the moment the POST is sent until the client sees the task succeed on
its Server-Sent Events stream (default; the stream replays from creation, so nothing is missed) or
by polling ``GET /tasks/{id}`` every 20 ms (adds up to 20 ms plus a request per poll). The media
service's log splits each latency into phases. The last line is ``p50 <ms> p99 <ms>``; the goals
are p50 <= 100 ms and p99 <= 300 ms on 2 cores.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

from bench import (
    TaskMarks,
    api_client,
    bench_parser,
    bench_run,
    cpu_delta,
    create_task,
    emit,
    percentile,
    running_stack,
    stack_cpu_seconds,
    task_marks,
    wait_done,
)
from stack import Stack
from tests.support import Origin, build_corpus

OPTIONS: dict[str, Any] = {"width": 32, "height": 32}


@dataclass(frozen=True)
class Sample:
    """One task as the client saw it: wall-clock send/seen times and the latency in seconds."""

    task_id: str
    sent: float  # time.time() just before the POST
    seen: float  # time.time() when the terminal event/poll arrived
    latency: float  # perf_counter difference (monotonic)
    post: float  # seconds the POST itself took


class Runner:
    """Runs tasks against one stack from any number of threads (one HTTP client per thread)."""

    def __init__(self, stack: Stack, url: str, wait: str) -> None:
        self._stack = stack
        self._url = url
        self._wait = wait
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self._lock = threading.Lock()

    def _client(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = api_client(self._stack)
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def one(self, _: int = 0) -> Sample:
        """Create one task and wait until it succeeds."""
        client = self._client()
        sent = time.time()
        started = time.perf_counter()
        task = create_task(client, "image", self._url, OPTIONS)
        post = time.perf_counter() - started
        done = wait_done(client, task["id"], self._wait)
        latency = time.perf_counter() - started
        seen = time.time()
        if done["status"] != "succeeded":
            raise RuntimeError(f"task {task['id']} ended {done['status']}: {done.get('error')}")
        return Sample(task_id=task["id"], sent=sent, seen=seen, latency=latency, post=post)

    def many(self, count: int, concurrency: int) -> list[Sample]:
        """Run ``count`` tasks, ``concurrency`` at a time; samples in submission order."""
        if concurrency <= 1:
            return [self.one() for _ in range(count)]
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="bench") as pool:
            return list(pool.map(self.one, range(count)))

    def close(self) -> None:
        for client in self._clients:
            client.close()


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f}"


def _summary_line(name: str, values: Sequence[float]) -> str:
    return (
        f"  {name:<22} p50 {_ms(percentile(values, 50))}  p90 {_ms(percentile(values, 90))}  "
        f"p99 {_ms(percentile(values, 99))}  max {_ms(max(values))}  ms"
    )


def report_phases(samples: Sequence[Sample], marks: dict[str, TaskMarks]) -> None:
    """Split each latency at the media service's log marks (clocks of one machine, ms resolution)."""
    phases: dict[str, list[float]] = {
        "POST -> queued": [],
        "queued -> started": [],
        "started -> succeeded": [],
        "succeeded -> client": [],
    }
    for sample in samples:
        mark = marks.get(sample.task_id, TaskMarks())
        created, started, finished = mark.created, mark.started, mark.finished
        if created is None or started is None or finished is None:
            continue
        phases["POST -> queued"].append(created - sample.sent)
        phases["queued -> started"].append(started - created)
        phases["started -> succeeded"].append(finished - started)
        phases["succeeded -> client"].append(sample.seen - finished)
    if not phases["POST -> queued"]:
        emit("phases: no task marks found in logs/media.log")
        return
    emit(f"phases from logs/media.log ({len(phases['POST -> queued'])} tasks):")
    for name, values in phases.items():
        emit(_summary_line(name, values))


def main(argv: list[str] | None = None) -> None:
    parser = bench_parser("latency", __doc__)
    parser.add_argument("--tasks", type=int, default=200, help="measured tasks (default 200)")
    parser.add_argument("--concurrency", type=int, default=1, help="tasks in flight at once (default 1)")
    parser.add_argument(
        "--wait",
        choices=("sse", "poll"),
        default="sse",
        help="how the client learns the task finished: the SSE stream (default) or polling every 20 ms",
    )
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured tasks run first (default 5)")
    parser.add_argument(
        "--worker-concurrency",
        type=int,
        default=None,
        help="TRANSMUTE_WORKER_CONCURRENCY for the stack (default: the service default)",
    )
    args = parser.parse_args(argv)

    env: dict[str, str] = {}
    if args.worker_concurrency is not None:
        env["TRANSMUTE_WORKER_CONCURRENCY"] = str(args.worker_concurrency)
    with bench_run("latency") as tmp:
        corpus = build_corpus(tmp / "corpus")
        emit(
            f"task: image {corpus.png_small.name} (64x64 PNG) -> options {OPTIONS}; "
            f"{args.tasks} tasks, concurrency {args.concurrency}, warm-up {args.warmup}; "
            f"completion seen via {'SSE stream' if args.wait == 'sse' else 'polling every 20 ms'}"
        )
        with running_stack(tmp / "stack", env) as stack, Origin(corpus.root) as origin:
            runner = Runner(stack, origin.url(corpus.png_small.name), args.wait)
            try:
                runner.many(args.warmup, args.concurrency)
                cpu_before = stack_cpu_seconds(stack)
                started = time.perf_counter()
                samples = runner.many(args.tasks, args.concurrency)
                elapsed = time.perf_counter() - started
                cpu = cpu_delta(cpu_before, stack_cpu_seconds(stack))
            finally:
                runner.close()
            marks = task_marks(stack.config.root / "logs" / "media.log")

    latencies = [s.latency for s in samples]
    emit(f"throughput {len(samples) / elapsed:.1f} tasks/s ({elapsed:.2f} s for {len(samples)} tasks)")
    per_task = ", ".join(f"{name} {seconds * 1000 / len(samples):.1f}" for name, seconds in cpu.items())
    emit(
        f"server CPU per task {sum(cpu.values()) * 1000 / len(samples):.1f} ms ({per_task}; "
        "media includes its ffmpeg children)"
    )
    emit("latency:")
    emit(_summary_line("POST (201 reply)", [s.post for s in samples]))
    emit(_summary_line("POST -> succeeded", latencies))
    report_phases(samples, marks)
    p50, p90, p99 = (percentile(latencies, p) * 1000 for p in (50, 90, 99))
    emit(f"p50 {p50:.1f} ms  p90 {p90:.1f} ms  p99 {p99:.1f} ms  max {max(latencies) * 1000:.1f} ms")
    emit(f"p50 {p50:.1f} p99 {p99:.1f}")


if __name__ == "__main__":
    main()
