"""The task store on a real JetStream KV bucket: compare-and-set, the lifecycle rule, events, paging."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from transmute.tasks.v1 import tasks_pb2

from taskkit import ids
from taskkit.errors import Conflict, InvalidRequest, NotFound
from taskkit.records import Bus, ListQuery, TaskStore, record_key, status
from tests.support.nats_server import running_bus


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[Bus]:
    async with running_bus(tmp_path) as connected:
        yield connected


def new_task(project: str = "p1", kind: str = "video", run: str = "run_x") -> tasks_pb2.Task:
    return tasks_pb2.Task(
        id=ids.task_id(), kind=kind, status=status.WAITING, project=project, run_id=run, url="u"
    )


async def test_concurrent_writers_never_lose_an_update(bus: Bus) -> None:
    store = TaskStore(bus)
    task = await store.create(new_task())
    key = record_key("p1", task.id)

    def bump(t: tasks_pb2.Task) -> None:
        t.attempts += 1

    await asyncio.gather(*(store.mutate(key, bump) for _ in range(25)))
    assert (await store.get("p1", task.id)).attempts == 25


async def test_status_only_moves_forward_and_terminal_is_final(bus: Bus) -> None:
    store = TaskStore(bus)
    task = await store.create(new_task())
    key = record_key("p1", task.id)

    def to(new: int):  # type: ignore[no-untyped-def]
        def change(t: tasks_pb2.Task) -> None:
            t.status = new

        return change

    await store.mutate(key, to(status.PROCESSING))
    with pytest.raises(Conflict):
        await store.mutate(key, to(status.QUEUED))
    await store.mutate(key, to(status.CANCELLED))

    def progress(t: tasks_pb2.Task) -> None:
        t.progress = 50

    with pytest.raises(Conflict, match="already cancelled"):
        await store.mutate(key, progress)
    final = await store.get("p1", task.id)
    assert final.status == status.CANCELLED and not final.HasField("progress")


async def test_other_projects_cannot_read_a_task(bus: Bus) -> None:
    store = TaskStore(bus)
    task = await store.create(new_task(project="p1"))
    with pytest.raises(NotFound):
        await store.get("p2", task.id)


async def test_watch_replays_every_change_and_ends_after_terminal(bus: Bus) -> None:
    store = TaskStore(bus)
    task = await store.create(new_task())
    key = record_key("p1", task.id)
    for new in (status.QUEUED, status.VALIDATING, status.PROCESSING, status.SUCCEEDED):

        def change(t: tasks_pb2.Task, new: int = new) -> None:
            t.status = new

        await store.mutate(key, change)
    events = [e async for e in store.watch("p1", task.id)]
    assert [e.topic for e in events] == ["task.created"] + ["task.updated"] * 3 + ["task.succeeded"]
    assert [e.task.status for e in events][-1] == status.SUCCEEDED
    assert len({e.id for e in events}) == len(events)


async def test_list_pages_by_creation_order_with_filters(bus: Bus) -> None:
    store = TaskStore(bus)
    created = []
    for i in range(7):
        task = new_task(kind="image" if i % 2 else "video", run="run_a" if i < 4 else "run_b")
        created.append((await store.create(task)).id)
        await asyncio.sleep(0.002)  # distinct millisecond prefixes
    await store.create(new_task(project="p2"))

    newest = await store.list_page("p1", ListQuery(limit=3))
    assert [t.id for t in newest.tasks] == created[::-1][:3] and newest.has_more
    nxt = await store.list_page("p1", ListQuery(limit=3, after=newest.tasks[-1].id))
    assert [t.id for t in nxt.tasks] == created[::-1][3:6]
    back = await store.list_page("p1", ListQuery(limit=3, before=nxt.tasks[0].id))
    assert [t.id for t in back.tasks] == created[::-1][:3]
    oldest = await store.list_page("p1", ListQuery(limit=10, descending=False))
    assert [t.id for t in oldest.tasks] == created and not oldest.has_more
    images = await store.list_page("p1", ListQuery(limit=10, kind="image"))
    assert [t.id for t in images.tasks] == [created[i] for i in (5, 3, 1)]
    run_b = await store.list_page("p1", ListQuery(limit=10, run_id="run_b"))
    assert {t.id for t in run_b.tasks} == set(created[4:])
    assert (await store.list_page("nobody", ListQuery())).tasks == []
    skipped = await store.list_page("p1", ListQuery(limit=2, offset=2))
    assert [t.id for t in skipped.tasks] == created[::-1][2:4]


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("metadata", {"a": float("inf")}, "'metadata.a'"),
        ("metadata", {"a": {"b": [float("nan")]}}, "'metadata.a.b[0]'"),
        ("options", {"start": float("-inf")}, "'options.start'"),
    ],
)
async def test_the_store_refuses_a_record_no_reader_could_render(
    bus: Bus, field: str, value: dict, named: str
) -> None:
    """The last line of defence: one such write would make every read and listing of the task fail."""
    store = TaskStore(bus)
    poisoned = new_task()
    getattr(poisoned, field).update(value)
    with pytest.raises(InvalidRequest, match=re.escape(named)):
        await store.create(poisoned)
    with pytest.raises(NotFound):
        await store.get("p1", poisoned.id)

    task = await store.create(new_task())

    def poison(t: tasks_pb2.Task) -> None:
        getattr(t, field).update(value)

    with pytest.raises(InvalidRequest, match=re.escape(named)):
        await store.mutate(record_key("p1", task.id), poison)
    assert (await store.get("p1", task.id)) == task
    assert [t.id for t in (await store.list_page("p1", ListQuery())).tasks] == [task.id]


async def test_a_fresh_watch_of_a_task_without_events_starts_with_its_record(bus: Bus) -> None:
    store = TaskStore(bus)
    task = await store.create(new_task())
    await bus.js.purge_stream("EVENTS", subject=f"tasks.events.{task.id}")
    watch = store.watch("p1", task.id)
    first = await asyncio.wait_for(watch.__anext__(), timeout=1)
    assert first.task.id == task.id and first.topic == "task.created" and first.revision >= 1
    await watch.aclose()


async def test_a_page_can_hold_only_the_children_of_a_task(bus: Bus) -> None:
    store = TaskStore(bus)
    parent = await store.create(new_task())
    child = new_task()
    child.parent_id = parent.id
    await store.create(child)
    await store.create(new_task())
    page = await store.list_page("p1", ListQuery(parent_id=parent.id))
    assert [t.id for t in page.tasks] == [child.id]
