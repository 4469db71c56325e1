"""Listing a 20,000-task project through the index: right pages, and reads bounded by the page.

Tasks are written straight into the bucket and the index in batches (``bench.listing.seed``, the
state ``TaskStore.create`` leaves), one every 2 ms of id time, with a neighbour project interleaved
so the project's entries are not contiguous in the stream.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest
import pytest_asyncio
from nats.js.errors import KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from transmute.tasks.v1 import tasks_pb2

from bench.listing import seed, seeded_task
from taskkit import ids
from taskkit.records import TASKS_BUCKET, ListQuery, TaskStore, status
from taskkit.records.index import INDEX_STREAM, TaskIndex, backfill
from tests.support.nats_server import running_bus

SIZE = 20_000
pytestmark = pytest.mark.asyncio(loop_scope="module")  # one server and one seeding for the module
PROJECT = "big"


class CountingKV:
    """The task bucket, counting record reads."""

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv
        self.reads = 0

    async def get(self, key: str, *args: Any, **kwargs: Any) -> Any:
        self.reads += 1
        return await self._kv.get(key, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._kv, name)


@dataclasses.dataclass
class Seeded:
    store: TaskStore
    kv: CountingKV
    tasks: list[tasks_pb2.Task]
    start_ms: int

    @property
    def ids(self) -> list[str]:
        return [t.id for t in self.tasks]

    async def page(self, **query: Any) -> tuple[list[str], bool]:
        page = await self.store.list_page(PROJECT, ListQuery(**query))
        return [t.id for t in page.tasks], page.has_more


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def seeded(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Seeded]:
    async with running_bus(tmp_path_factory.mktemp("nats")) as bus:
        start_ms = int(time.time() * 1000) - 3 * SIZE
        tasks = [seeded_task(PROJECT, start_ms + 2 * n, n) for n in range(SIZE)]
        neighbours = [seeded_task("neighbour", start_ms + 2 * n + 1, n) for n in range(0, SIZE, 4)]
        for part in range(0, SIZE, 5000):  # interleave the two projects in the stream
            await seed(bus, tasks[part : part + 5000])
            await seed(bus, neighbours[part // 4 : (part + 5000) // 4])
        kv = CountingKV(bus.kv)
        store = TaskStore(dataclasses.replace(bus, kv=cast(KeyValue, kv)))
        yield Seeded(store=store, kv=kv, tasks=tasks, start_ms=start_ms)


async def test_first_pages_in_both_orders(seeded: Seeded) -> None:
    newest, more = await seeded.page(limit=50)
    assert newest == seeded.ids[::-1][:50] and more
    oldest, more = await seeded.page(limit=50, descending=False)
    assert oldest == seeded.ids[:50] and more


@pytest.mark.parametrize(
    ("descending", "cursor", "expected"),
    [
        (True, "after", range(9_999, 9_949, -1)),
        (False, "after", range(10_001, 10_051)),
        (True, "before", range(10_050, 10_000, -1)),
        (False, "before", range(9_950, 10_000)),
    ],
)
async def test_a_middle_page_by_cursor(
    seeded: Seeded, descending: bool, cursor: str, expected: range
) -> None:
    page, more = await seeded.page(limit=50, descending=descending, **{cursor: seeded.ids[10_000]})
    assert page == [seeded.ids[i] for i in expected] and more


async def test_a_cursor_naming_no_task_splits_where_ids_cross_it(seeded: Seeded) -> None:
    between = ids.new_id("task", now_ms=seeded.start_ms + 2 * 12_345 + 1)  # after 12,345, before 12,346
    page, _ = await seeded.page(limit=3, after=between)
    assert page == [seeded.ids[i] for i in (12_345, 12_344, 12_343)]
    page, _ = await seeded.page(limit=3, after=between, descending=False)
    assert page == [seeded.ids[i] for i in (12_346, 12_347, 12_348)]


async def test_paging_to_the_end_by_cursor_lists_each_task_once(seeded: Seeded) -> None:
    seen: list[str] = []
    cursor = seeded.ids[SIZE - 301]
    more = True
    while more:
        page, more = await seeded.page(limit=100, descending=False, after=cursor)
        seen += page
        cursor = page[-1]
    assert seen == seeded.ids[SIZE - 300 :]


async def test_filters_on_index_fields_and_on_status(seeded: Seeded) -> None:
    audio, more = await seeded.page(limit=20, kind="audio")
    assert audio == [t.id for t in seeded.tasks if t.kind == "audio"][::-1][:20] and more
    run, more = await seeded.page(limit=100, run_id=seeded.tasks[7_500].run_id, descending=False)
    assert run == seeded.ids[7_000:7_100] and more
    queued, _ = await seeded.page(limit=10, status=status.QUEUED, after=seeded.ids[501])
    assert queued == [seeded.ids[i] for i in range(500, 480, -2)]


async def test_a_page_reads_records_for_the_page_not_the_project(seeded: Seeded) -> None:
    queries: list[dict[str, Any]] = [
        {"limit": 50},
        {"limit": 50, "after": seeded.ids[15_000]},
        {"limit": 50, "before": seeded.ids[3_000], "descending": False},
        {"limit": 20, "offset": 40},
        {"limit": 100, "offset": 15_000},  # page 151 of a 2025-08-20 client: skipped on the index
    ]
    for query in queries:
        seeded.kv.reads = 0
        page, _ = await seeded.page(**query)
        assert len(page) == query["limit"]
        assert seeded.kv.reads <= query["limit"] + 8, (query, seeded.kv.reads)


async def test_a_deep_offset_fills_its_page(seeded: Seeded) -> None:
    page, more = await seeded.page(limit=100, offset=19_850)
    assert page == seeded.ids[::-1][19_850:19_950] and more
    page, more = await seeded.page(limit=100, offset=19_950)
    assert page == seeded.ids[::-1][19_950:] and not more
    queued, _ = await seeded.page(limit=10, offset=100, status=status.QUEUED)
    assert queued == [t.id for t in seeded.tasks if t.status == status.QUEUED][::-1][100:110]


async def test_a_cursor_committed_out_of_id_order_is_found(seeded: Seeded) -> None:
    """Ids are minted before the index append, so racing creates commit out of id order:
    a, c, b in the stream with id(a) < id(b) < id(c). Paging from c still finds b."""
    now = int(time.time() * 1000)
    a, b, c = (seeded_task("racing", now + n, n) for n in range(3))
    for task in (a, c, b):
        await seed(seeded.store._bus, [task])
    racing = [a.id, c.id, b.id]
    for query, expected in [
        (ListQuery(limit=10, after=c.id, descending=False), [b.id]),
        (ListQuery(limit=10, before=c.id), [b.id]),
        (ListQuery(limit=10, after=c.id), [a.id]),
        (ListQuery(limit=10), racing[::-1]),
    ]:
        page = await seeded.store.list_page("racing", query)
        assert [t.id for t in page.tasks] == expected, query


async def test_an_entry_without_a_record_is_skipped(seeded: Seeded) -> None:
    """A create that stopped between its index entry and its record leaves only the entry."""
    index = TaskIndex(seeded.store._bus.nc, seeded.store._bus.js)
    orphan = seeded_task(PROJECT, int(time.time() * 1000), SIZE)
    await index.add(orphan)
    newest, _ = await seeded.page(limit=5)
    assert orphan.id not in newest and newest == seeded.ids[::-1][:5]
    after_orphan, _ = await seeded.page(limit=2, before=orphan.id, descending=False)
    assert after_orphan == seeded.ids[-2:]


async def test_backfill_indexes_records_written_before_the_index(tmp_path: Path) -> None:
    async with running_bus(tmp_path) as bus:
        start_ms = int(time.time() * 1000) - 1000
        tasks = [seeded_task("old", start_ms + n, n) for n in range(300)]
        for task in reversed(tasks):  # records in any order: the backfill sorts each project by id
            await bus.kv.create(f"{task.project}.{task.id}", task.SerializeToString())
        assert await backfill(bus.nc, bus.js, f"KV_{TASKS_BUCKET}", f"$KV.{TASKS_BUCKET}.") == 300
        assert await backfill(bus.nc, bus.js, f"KV_{TASKS_BUCKET}", f"$KV.{TASKS_BUCKET}.") == 0  # once
        assert (await bus.js.stream_info(INDEX_STREAM)).state.messages == 300
        store = TaskStore(bus)
        page = await store.list_page("old", ListQuery(limit=300, descending=False))
        assert [t.id for t in page.tasks] == [t.id for t in tasks] and not page.has_more


async def test_a_create_that_finds_its_record_leaves_no_second_entry(tmp_path: Path) -> None:
    """Past the duplicate window a replayed create appends a new entry; finding the record already
    stored, it removes that entry again, so the task is listed once."""
    async with running_bus(tmp_path) as bus:
        task = seeded_task("p", int(time.time() * 1000), 1)
        await bus.kv.create(f"p.{task.id}", task.SerializeToString())  # stored earlier
        with pytest.raises(KeyWrongLastSequenceError):
            await TaskStore(bus).create(tasks_pb2.Task.FromString(task.SerializeToString()))
        assert (await bus.js.stream_info(INDEX_STREAM)).state.messages == 0
