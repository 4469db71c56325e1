"""The start-up repair of the listing index (``taskkit.records.index.backfill``) on a real server.

A rolling upgrade leaves records that old processes wrote without an entry, interleaved in time
with tasks that new processes indexed; an index may also have lost entries, or hold a task twice
after a repair that stopped part way. After the repair every stored task is listed once, in
creation order, and running it again (or from two processes at once) adds nothing more.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from transmute.tasks.v1 import tasks_pb2

from taskkit import ids
from taskkit.records import TASKS_BUCKET, Bus, ListQuery, TaskStore, connect, index_subject, stub
from taskkit.records.index import INDEX_STREAM, _Repair, backfill
from tests.support.nats_server import running_bus, running_nats

PROJECT = "p"


def made(count: int, *, project: str = PROJECT) -> list[tasks_pb2.Task]:
    """Tasks minted 1 ms apart, in creation order."""
    start = int(time.time() * 1000) - 10 * count
    return [
        tasks_pb2.Task(id=ids.new_id("task", now_ms=start + n), kind="video", project=project, run_id="run_x")
        for n in range(count)
    ]


async def store_records(bus: Bus, tasks: list[tasks_pb2.Task]) -> None:
    """Records alone, as a process older than the index writes them."""
    acks = [
        await bus.js.publish_async(f"$KV.{TASKS_BUCKET}.{t.project}.{t.id}", t.SerializeToString())
        for t in tasks
    ]
    await asyncio.gather(*acks)


async def index_entries(bus: Bus, tasks: list[tasks_pb2.Task], *, msg_id: str = "") -> list[int]:
    """Index entries alone (the create path writes them first); their sequences."""
    acks = [
        await bus.js.publish_async(
            index_subject(t.project),
            stub(t).SerializeToString(),
            headers={"Nats-Msg-Id": msg_id + t.id},
        )
        for t in tasks
    ]
    return [int(ack.seq) for ack in await asyncio.gather(*acks)]


async def repair(bus: Bus) -> int:
    return await backfill(bus.nc, bus.js, f"KV_{TASKS_BUCKET}", f"$KV.{TASKS_BUCKET}.")


async def listed(bus: Bus, *, descending: bool = False, limit: int = 100) -> list[str]:
    """Every task of the project, page after page by cursor."""
    store, found, cursor = TaskStore(bus), [], None
    while True:
        page = await store.list_page(PROJECT, ListQuery(limit=limit, after=cursor, descending=descending))
        found += [t.id for t in page.tasks]
        if not page.has_more:
            return found
        cursor = found[-1]


async def index_size(bus: Bus) -> int:
    return int((await bus.js.stream_info(INDEX_STREAM)).state.messages)


async def upgrade_state(bus: Bus, tasks: list[tasks_pb2.Task]) -> set[str]:
    """Every task stored; every third written by an old process (no entry), and two of the
    indexed ones lost from the index. Returns the ids without an entry."""
    await store_records(bus, tasks)
    unindexed = {t.id for n, t in enumerate(tasks) if n % 3 == 0}
    seqs = await index_entries(bus, [t for t in tasks if t.id not in unindexed])
    for seq in (seqs[1], seqs[-1]):
        await bus.js.delete_msg(INDEX_STREAM, seq)
    lost = {t.id for t in tasks if t.id not in unindexed}
    return unindexed | {sorted(lost)[1], sorted(lost)[-1]}


async def test_a_partial_index_is_repaired_in_creation_order(tmp_path: Path) -> None:
    async with running_bus(tmp_path) as bus:
        tasks = made(300)
        neighbours = made(50, project="other")
        await store_records(bus, neighbours)
        await index_entries(bus, neighbours)
        missing = await upgrade_state(bus, tasks)
        assert len(await listed(bus)) == len(tasks) - len(missing)  # today's listing misses them

        assert await repair(bus) == len(missing)
        every = [t.id for t in tasks]
        assert await listed(bus) == every
        assert await listed(bus, descending=True, limit=7) == every[::-1]
        assert await index_size(bus) == len(tasks) + len(neighbours)

        assert await repair(bus) == 0  # a second start adds nothing
        assert await index_size(bus) == len(tasks) + len(neighbours)
        assert await listed(bus) == every


async def test_two_processes_repairing_at_once_index_each_task_once(tmp_path: Path) -> None:
    with running_nats(tmp_path) as url:
        one, two = await connect(url, name="one"), await connect(url, name="two")
        try:
            tasks = made(2500)  # more than one publish batch of the copy
            missing = await upgrade_state(one, tasks)
            added = await asyncio.gather(repair(one), repair(two))
            assert sum(added) == len(missing)
            assert await listed(one, limit=500) == [t.id for t in tasks]
            assert await index_size(one) == len(tasks)
            assert await asyncio.gather(repair(one), repair(two)) == [0, 0]
            assert await index_size(two) == len(tasks)
        finally:
            await one.close()
            await two.close()


async def test_a_task_indexed_twice_is_listed_once(tmp_path: Path) -> None:
    """What a repair that stopped before deleting the old entries leaves behind."""
    async with running_bus(tmp_path) as bus:
        tasks = made(40)
        await store_records(bus, tasks)
        await index_entries(bus, tasks)
        await index_entries(bus, tasks[10:20], msg_id="stopped-copy:")
        assert len(await listed(bus)) == 50

        assert await repair(bus) == 0  # nothing was missing, only doubled
        assert await listed(bus) == [t.id for t in tasks]
        assert await index_size(bus) == len(tasks)


async def test_an_entry_without_a_record_survives_the_repair(tmp_path: Path) -> None:
    """A create that stopped between its entry and its record: the entry stays (listing skips
    it, and the create's retry writes the record it stands for)."""
    async with running_bus(tmp_path) as bus:
        tasks = made(20)
        await store_records(bus, tasks[:5] + tasks[6:])
        await index_entries(bus, tasks[5:])
        assert await repair(bus) == 5
        assert await index_size(bus) == len(tasks)
        assert await listed(bus) == [t.id for n, t in enumerate(tasks) if n != 5]


async def test_a_create_landing_inside_the_copy_is_moved_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new process creates a task while another rewrites the project: its entry lands among the
    copy's, so it would list among older tasks; the repair moves it after the copy."""
    async with running_bus(tmp_path) as bus:
        tasks = made(200)
        missing = await upgrade_state(bus, tasks)
        live = made(1)[0]
        live.id = ids.new_id("task")  # minted now: newer than every copied task
        publish = _Repair._publish

        async def publish_around_a_create(
            self: _Repair, project: str, stubs: list[tasks_pb2.Task], generation: int
        ) -> dict[str, tuple[int, bool]]:
            if len(stubs) < len(tasks):  # the moves, after the copy
                return await publish(self, project, stubs, generation)
            placed = await publish(self, project, stubs[:100], generation)
            await TaskStore(bus).create(tasks_pb2.Task.FromString(live.SerializeToString()))
            return placed | await publish(self, project, stubs[100:], generation)

        monkeypatch.setattr(_Repair, "_publish", publish_around_a_create)
        assert await repair(bus) == len(missing)
        assert await listed(bus) == [t.id for t in tasks] + [live.id]
        assert await index_size(bus) == len(tasks) + 1


async def test_tens_of_thousands_of_tasks_are_repaired_whole(tmp_path: Path) -> None:
    """Its cost is stated in ``records/index.py``; speed is a benchmark's to judge, not a test's."""
    count = 30_000
    async with running_bus(tmp_path) as bus:
        tasks = made(count)
        await store_records(bus, tasks)
        await index_entries(bus, tasks[: count // 2])  # the newer half written by old processes
        assert await repair(bus) == count - count // 2
        assert await repair(bus) == 0
        assert await index_size(bus) == count
        page = await TaskStore(bus).list_page(PROJECT, ListQuery(limit=5))
        assert [t.id for t in page.tasks] == [t.id for t in tasks[::-1][:5]]
