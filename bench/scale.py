"""Throughput of an I/O-bound queue with one and then two worker processes.

``python -m bench.scale [--tasks N] [--warmup W] [--delay S]``

Starts the stack in a temp dir with the media API process alone (``--role api``) and one worker
process (``--role worker``), every worker at ``TRANSMUTE_WORKER_CONCURRENCY=1`` and
``TRANSMUTE_KINDS=image``. The input is the test corpus's 64x64 PNG (185 bytes) served by a local
origin that holds the second half of every body back for ``--delay`` seconds (default 0.2): the task
costs the worker a little CPU and mostly waiting, so two cores do not cap what a second worker adds.
``N`` ``image`` tasks (``{"width": 32}``) are created at once (the queue), and throughput is N
divided by the wall time from the first create sent to the last task's finish as its worker logged
it (to the millisecond). Then a second worker process joins (``Stack.add_worker``) and the same
queue runs again. Warm-up tasks run unmeasured before each. The
last line is ``ratio <2-worker / 1-worker throughput>``; the goal is >= 1.8.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from bench import (
    api_client,
    bench_parser,
    bench_run,
    create_task,
    emit,
    running_stack,
    task_marks,
    wait_poll,
)
from stack import Stack
from tests.support import Origin, build_corpus

OPTIONS = {"width": 32}
_CREATORS = 8  # threads sending the queue's creates
_READY_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Run:
    """One queue: how many tasks, how many succeeded, the wall time, and who ran them."""

    tasks: int
    succeeded: int
    seconds: float
    per_worker: dict[str, int]  # worker process name -> tasks it finished

    @property
    def throughput(self) -> float:
        return self.tasks / self.seconds


def run_queue(stack: Stack, url: str, count: int) -> Run:
    """Create ``count`` tasks at once, wait for every one, and time first create → last finish."""
    with api_client(stack) as client, ThreadPoolExecutor(_CREATORS) as pool:
        started = time.time()
        created = list(pool.map(lambda _: create_task(client, "image", url, OPTIONS), range(count)))
        done = [wait_poll(client, task["id"], interval=0.1, timeout=300.0) for task in created]
    ids = {task["id"] for task in done}
    finished: list[float] = []
    per_worker: dict[str, int] = {}
    for name in (name for name in stack.procs if name.startswith("media-worker-")):
        marks = task_marks(stack.config.root / "logs" / f"{name}.log")
        ends = [mark.finished for task_id, mark in marks.items() if task_id in ids and mark.finished]
        per_worker[name] = len(ends)
        finished += ends
    succeeded = sum(task["status"] == "succeeded" for task in done)
    return Run(tasks=count, succeeded=succeeded, seconds=max(finished) - started, per_worker=per_worker)


def wait_worker_started(stack: Stack, name: str) -> None:
    """Block until the worker process ``name`` has bound its consumers (its log says so)."""
    deadline = time.monotonic() + _READY_TIMEOUT_S
    while '"worker started"' not in stack.log_text(name):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not start within {_READY_TIMEOUT_S:.0f} s")
        time.sleep(0.1)


def report(workers: int, run: Run) -> None:
    emit(
        f"{workers} worker{'s' if workers > 1 else ''}: {run.tasks} tasks ({run.succeeded} succeeded) in "
        f"{run.seconds:.2f} s: {run.throughput:.2f} tasks/s (tasks per worker: {run.per_worker})"
    )


def main(argv: list[str] | None = None) -> None:
    parser = bench_parser("scale", __doc__)
    parser.add_argument("--tasks", type=int, default=40, help="tasks in each measured queue (default 40)")
    parser.add_argument("--warmup", type=int, default=4, help="unmeasured tasks before each (default 4)")
    parser.add_argument("--delay", type=float, default=0.2, help="origin's delay per input (default 0.2 s)")
    args = parser.parse_args(argv)

    # Workers run the image kind only: at concurrency 1 each other kind's consumer would take the
    # one slot in turn for a 0.1 s empty poll (taskkit/runtime/worker.py), ~0.3 s between two image tasks.
    env = {"TRANSMUTE_WORKER_CONCURRENCY": "1", "TRANSMUTE_KINDS": "image"}
    with bench_run("scale") as tmp:
        corpus = build_corpus(tmp / "corpus")
        half = -(-corpus.png_small.stat().st_size // 2)  # two pieces, so one delay per request
        emit(
            f"task: image {corpus.png_small.name} -> {OPTIONS}, input answered in two halves "
            f"{args.delay * 1000:.0f} ms apart; queues of {args.tasks} tasks, worker concurrency 1"
        )
        with Origin(corpus.root) as origin, running_stack(tmp / "stack", env, media_role="api") as stack:
            url = origin.slow_url(corpus.png_small.name, chunk=half, delay=args.delay)
            runs: dict[int, Run] = {}
            for workers in (1, 2):
                stack.add_worker()  # "media-worker-1", then "media-worker-2" beside it
                wait_worker_started(stack, f"media-worker-{workers}")
                run_queue(stack, url, args.warmup)
                runs[workers] = run_queue(stack, url, args.tasks)
                report(workers, runs[workers])
    emit(f"ratio {runs[2].throughput / runs[1].throughput:.2f}")


if __name__ == "__main__":
    main()
