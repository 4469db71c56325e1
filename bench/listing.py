"""List latency as a project grows: a page of 50 at 1k, 10k and 100k tasks in one project.

``python -m bench.listing [--pages 200] [--sizes 1000,10000,100000]``

Starts a real nats-server in a temp dir, grows one project to each size with batched direct writes
(records into the task bucket and entries into the listing index, as ``TaskStore.create`` leaves
them, without the API), and at each size times ``TaskStore.list_page`` over ``--pages`` pages of
50, mixing the three shapes clients use: the newest page, the page after a random cursor (newest
first), and the page after a random cursor oldest first. Prints median and p99 per size; the last
line is ``ratio <median at the largest size / median at the smallest>`` (goal: flat, ≤ 50 ms a
page). Asserts nothing.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time

from transmute.tasks.v1 import tasks_pb2

from bench import bench_parser, bench_run, emit, percentile
from taskkit import ids
from taskkit.records import TASKS_BUCKET, Bus, ListQuery, TaskStore, index_subject, status, stub
from tests.support.nats_server import running_bus

PAGE = 50
_BATCH = 1000


def seeded_task(project: str, millis: int, number: int) -> tasks_pb2.Task:
    """A task as a create stores it, with an id minted at ``millis`` (ids sort by that time)."""
    return tasks_pb2.Task(
        id=ids.new_id("task", now_ms=millis),
        kind="audio" if number % 100 == 0 else "video",
        status=status.SUCCEEDED if number % 2 else status.QUEUED,
        project=project,
        run_id=f"run_{number // 1000:016d}",
        url="https://example.com/in.mp4",
        created_at=millis // 1000,
    )


async def seed(bus: Bus, tasks: list[tasks_pb2.Task]) -> None:
    """Write records and index entries in pipelined batches (the create path, minus the API)."""
    for start in range(0, len(tasks), _BATCH):
        acks = []
        for task in tasks[start : start + _BATCH]:
            key = f"$KV.{TASKS_BUCKET}.{task.project}.{task.id}"
            acks.append(await bus.js.publish_async(key, task.SerializeToString()))
            acks.append(
                await bus.js.publish_async(index_subject(task.project), stub(task).SerializeToString())
            )
        await asyncio.gather(*acks)


async def _time_pages(store: TaskStore, project: str, created: list[str], pages: int) -> list[float]:
    rng = random.Random(7)
    queries = []
    for i in range(pages):
        cursor = rng.choice(created)
        queries.append(
            [
                ListQuery(limit=PAGE),
                ListQuery(limit=PAGE, after=cursor),
                ListQuery(limit=PAGE, after=cursor, descending=False),
            ][i % 3]
        )
    spent = []
    for query in queries:
        started = time.perf_counter()
        page = await store.list_page(project, query)
        spent.append((time.perf_counter() - started) * 1000)
        if not page.tasks:
            raise RuntimeError(f"an empty page for {query}")
    return spent


async def run(sizes: list[int], pages: int) -> None:
    with bench_run("listing") as tmp:
        async with running_bus(tmp) as bus:
            store = TaskStore(bus)
            project = "bench"
            created: list[str] = []
            millis = int(time.time() * 1000) - 10 * max(sizes)
            medians = []
            for size in sizes:
                tasks = [seeded_task(project, millis + 2 * n, n) for n in range(len(created), size)]
                started = time.perf_counter()
                await seed(bus, tasks)
                await seed(
                    bus,
                    [seeded_task("neighbour", millis + 2 * n + 1, n) for n in range(len(created), size, 10)],
                )
                created += [t.id for t in tasks]
                seeded_s = time.perf_counter() - started
                await _time_pages(store, project, created, 10)  # warm-up
                spent = await _time_pages(store, project, created, pages)
                median = statistics.median(spent)
                medians.append(median)
                emit(
                    f"{size:>7} tasks: page of {PAGE} median {median:.1f} ms, p99 "
                    f"{percentile(spent, 99):.1f} ms ({pages} pages; seeded in {seeded_s:.1f} s)"
                )
    emit(f"ratio {medians[-1] / medians[0]:.2f}")


def main(argv: list[str] | None = None) -> None:
    parser = bench_parser("listing", __doc__)
    parser.add_argument("--pages", type=int, default=200, help="pages timed per size (default 200)")
    parser.add_argument("--sizes", default="1000,10000,100000", help="project sizes, ascending")
    args = parser.parse_args(argv)
    asyncio.run(run([int(s) for s in args.sizes.split(",")], args.pages))


if __name__ == "__main__":
    main()
