"""Task records in the JetStream KV bucket, written only by compare-and-set.

Every write reads the current revision, applies a change, checks the lifecycle rule and
updates with ``last=revision``; a conflicting writer makes it retry from a fresh read. So a cancel
and a progress tick racing each other can never overwrite one another. Each successful write
publishes a ``TaskEvent`` on ``tasks.events.<task_id>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import DeliverPolicy
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from transmute.tasks.v1 import tasks_pb2

from taskkit import ids
from taskkit.errors import Conflict, Contended, NotFound
from taskkit.records import json_values, status
from taskkit.records.index import Entry, TaskIndex
from taskkit.records.jetstream import EVENTS_STREAM, TASKS_BUCKET, Bus, event_subject

log = logging.getLogger(__name__)

_CAS_ATTEMPTS = 20
_CAS_BACKOFF_S = 0.005
_WATCH_POLL_S = 2.0
_PUBLISH_S = 5.0
_END = 0  # a walk down from the newest entry
_CHUNK = 128  # index entries per read
_GROUP = 64  # records read at once
_SCAN_BUDGET = 100_000  # index entries one page may scan for a rare filter
_READ_BUDGET = 10_000  # records one page may read for a rare status filter

Change = Callable[[tasks_pb2.Task], None]


def record_key(project: str, task_id: str) -> str:
    """The KV key of a task; a malformed id cannot name any task, so it is simply not found."""
    if not ids.is_valid("task", task_id):
        raise NotFound(f"No task with id {task_id} was found.")
    return f"{project}.{task_id}"


def split_key(key: str) -> tuple[str, str]:
    project, _, task_id = key.rpartition(".")
    return project, task_id


def topic_for(task: tasks_pb2.Task, *, created: bool) -> str:
    """The D25 webhook/SSE topic of a change that left the task in this state."""
    if created:
        return "task.created"
    if task.status == status.SUCCEEDED:
        return "task.succeeded"
    if task.status == status.FAILED:
        return "task.failed"
    return "task.updated"


def check_renderable(task: tasks_pb2.Task) -> None:
    """Refuse a record that readers could not render (InvalidRequest naming the field): one such
    write would break every read of the task and every listing page holding it."""
    json_values.check_value(json_values.from_struct(task.options), field="options")
    json_values.check_value(json_values.from_struct(task.metadata), field="metadata")


def mark_failed(message: str) -> Change:
    """The change that ends a task as failed with a one-sentence ``error``."""

    def change(task: tasks_pb2.Task) -> None:
        task.status = status.FAILED
        task.error = message
        task.finished_at = int(time.time())

    return change


@dataclass(frozen=True)
class Page:
    tasks: list[tasks_pb2.Task]
    has_more: bool


@dataclass(frozen=True)
class ListQuery:
    limit: int = 20
    after: str | None = None
    before: str | None = None
    descending: bool = True
    status: int = 0
    kind: str | None = None
    run_id: str | None = None
    parent_id: str | None = None
    offset: int = 0

    def matches(self, task: tasks_pb2.Task) -> bool:
        return (not self.status or task.status == self.status) and self.matches_fixed(task)

    def matches_fixed(self, task: tasks_pb2.Task) -> bool:
        """The filters on fields a create fixes for good, which the listing index holds."""
        return (
            (self.kind is None or task.kind == self.kind)
            and (self.run_id is None or task.run_id == self.run_id)
            and (self.parent_id is None or task.parent_id == self.parent_id)
        )


class TaskStore:
    """Reads and compare-and-set writes of task records, plus their event stream."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus
        self._index = TaskIndex(bus.nc, bus.js)

    async def create(self, task: tasks_pb2.Task) -> tasks_pb2.Task:
        now = int(time.time())
        task.created_at = task.created_at or now
        task.updated_at = now
        check_renderable(task)
        # The index entry first: a create stopped before its record leaves an entry that listing
        # skips, never a record that listing cannot find.
        entry, seen = await self._index.add(task)
        try:
            revision = await self._bus.kv.create(record_key(task.project, task.id), task.SerializeToString())
        except KeyWrongLastSequenceError:
            if not seen:  # the record came from an earlier create, which indexed it already
                with contextlib.suppress(NatsError):
                    await self._index.remove(entry)
            raise
        await self._publish(task, created=True, revision=revision)
        return task

    async def get(self, project: str, task_id: str) -> tasks_pb2.Task:
        task, _ = await self._read(record_key(project, task_id))
        return task

    async def get_by_key(self, key: str) -> tasks_pb2.Task:
        task, _ = await self._read(key)
        return task

    async def _read(self, key: str) -> tuple[tasks_pb2.Task, int]:
        try:
            entry = await self._bus.kv.get(key)
        except KeyNotFoundError:
            _, task_id = split_key(key)
            raise NotFound(f"No task with id {task_id} was found.") from None
        task = tasks_pb2.Task()
        task.ParseFromString(entry.value or b"")
        return task, int(entry.revision or 0)

    async def mutate(self, key: str, change: Change) -> tasks_pb2.Task:
        """Apply ``change`` to the current record and write it back with compare-and-set.

        ``change`` edits the task in place and may raise to abort. A terminal record is final:
        any change to it, or a change moving the status backwards, raises Conflict. No-op changes
        write nothing.
        """
        for attempt in range(_CAS_ATTEMPTS):
            current, revision = await self._read(key)
            updated = tasks_pb2.Task()
            updated.CopyFrom(current)
            change(updated)
            if updated == current:
                return current
            if status.is_terminal(current.status) or not status.can_move(current.status, updated.status):
                raise Conflict(
                    f"Task {current.id} is already {status.name(current.status)}.",
                )
            updated.updated_at = int(time.time())
            if updated.options != current.options or updated.metadata != current.metadata:
                check_renderable(updated)
            try:
                written = await self._bus.kv.update(key, updated.SerializeToString(), last=revision)
            except KeyWrongLastSequenceError:
                # Lost the race: back off a little, with jitter, so many writers of one record
                # spread out instead of colliding again in lockstep.
                await asyncio.sleep(random.uniform(0, _CAS_BACKOFF_S * (attempt + 1)))
                continue
            await self._publish(updated, created=False, revision=written)
            return updated
        raise Contended(f"Task {split_key(key)[1]} is being updated too often; try again.")

    async def list_page(self, project: str, query: ListQuery) -> Page:
        """One page of a project's tasks in creation order, read from the index (``taskkit.records.index``).

        The index is walked from the cursor's place in the listing order (towards the cursor for
        ``before``, so the page holds its nearest neighbours), filtering on the fields it holds;
        the records of the candidates are read in batches, and an entry whose record is missing (a
        create that stopped between the two writes) is skipped. Without filters a page reads
        ``limit + 1`` records (+ ``offset`` skipped ones); a filter reads what it scans, up to
        ``_SCAN_BUDGET`` index entries and ``_READ_BUDGET`` records, after which the page ends
        early with ``has_more``. Without a status filter an offset is skipped on the index alone.
        """
        backwards = query.before is not None and query.after is None
        cursor = query.after if query.after is not None else query.before
        split = await self._index.split(project, cursor) if cursor is not None else None
        # newest first, read down from the cursor (or the end); oldest first, read up from it
        down = query.descending != backwards
        if split is None:
            start = _END if down else 1
        elif down:
            start = split.below if query.descending == (query.after is not None) else split.above
        else:
            start = split.above if query.descending != (query.after is not None) else split.below
        found: list[tasks_pb2.Task] = []
        skip = query.offset
        scanned = reads = 0
        has_more = False
        # unfiltered, a page needs limit + 1 entries past the offset; a filter reads full chunks
        filtered = query.kind is not None or query.run_id is not None or query.parent_id is not None
        size = _CHUNK if filtered or query.status else min(query.limit + 1 + skip, _CHUNK)
        async for chunk in self._walk(project, start, down=down, size=size):
            wanted = [e.task.id for e in chunk if query.matches_fixed(e.task)]
            if skip and not query.status:
                # The offset (page numbers of 2025-08-20 clients) is skipped on the index, without
                # reading records or spending the budgets: a page deep in a big project still
                # fills. (An entry whose record is missing then counts as skipped.)
                skipped = min(skip, len(wanted))
                skip -= skipped
                wanted = wanted[skipped:]
                if not wanted:
                    continue
            scanned += len(chunk)
            group_size = min(max(query.limit + 1 + skip - len(found), 8), _GROUP)
            for group in _groups(wanted, group_size):
                reads += len(group)
                for task in await self._read_many(project, group):
                    if task is None or not query.matches(task):
                        continue  # no record (its create stopped part way) or filtered out
                    if skip:
                        skip -= 1
                    elif len(found) == query.limit:
                        has_more = True
                        break
                    else:
                        found.append(task)
                if has_more:
                    break
            if has_more:
                break
            if scanned >= _SCAN_BUDGET or reads >= _READ_BUDGET:
                has_more = True  # a rare filter: stop here rather than read the whole project
                log.info("listing stopped at its scan budget", extra={"project": project})
                break
        if backwards:
            found.reverse()
        return Page(tasks=found, has_more=has_more)

    async def _walk(self, project: str, start: int, *, down: bool, size: int) -> AsyncIterator[list[Entry]]:
        """The project's index entries from ``start`` (exclusive going down), in chunks."""
        if down:
            if start == _END:
                last = await self._index.last(project)
                if last is None:
                    return
                start = last.seq + 1
            while start > 1:
                chunk = await self._index.backward(project, start, size)
                if not chunk:
                    return
                yield chunk
                start = chunk[-1].seq
        else:
            while True:
                chunk = await self._index.forward(project, start, size)
                if not chunk:
                    return
                yield chunk
                start = chunk[-1].seq + 1

    async def _task_ids(self, project: str) -> list[str]:
        """Every stored id of a project, from the bucket's per-subject state in one request: for
        tests and tools that count a small project's records. The server caps the answer at
        100,000 subjects, which is why listing reads the index instead."""
        prefix = f"$KV.{TASKS_BUCKET}.{project}."
        info = await self._bus.js.stream_info(f"KV_{TASKS_BUCKET}", subjects_filter=f"{prefix}>")
        return [subject[len(prefix) :] for subject in (info.state.subjects or {})]

    async def _read_many(self, project: str, task_ids: list[str]) -> list[tasks_pb2.Task | None]:
        """The records of ``task_ids`` in order, read concurrently; None where none is stored."""

        async def one(task_id: str) -> tasks_pb2.Task | None:
            try:
                return await self.get(project, task_id)
            except NotFound:
                return None

        return list(await asyncio.gather(*(one(t) for t in task_ids)))

    async def watch(
        self, project: str, task_id: str, *, after: int = 0
    ) -> AsyncIterator[tasks_pb2.TaskEvent]:
        """Every event of a task from its creation (or after revision ``after``), ending after a
        terminal status.

        Replays the EVENTS stream through an ordered consumer. If events have aged out of the
        stream, the record is re-read while idle so a finished task still ends the stream. A
        resumed watch starts with the record itself when it is newer than ``after``: events are
        best effort, the record is not, so a reconnecting client never misses the latest state.
        So does a fresh watch of a task with no events in the stream (they aged out, or were never
        published): the stream then opens at once, with the current state, instead of waiting
        for the task's next change.
        """
        current, revision = await self._read(record_key(project, task_id))
        sub = await self._bus.js.subscribe(
            event_subject(task_id), ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
        )
        seen = after
        try:
            if after or not await self._has_events(task_id):
                if revision > after:
                    seen = revision
                    yield _event(
                        current, created=not after and current.status == status.WAITING, revision=revision
                    )
                if status.is_terminal(current.status):
                    return
            while True:
                try:
                    msg = await sub.next_msg(timeout=_WATCH_POLL_S)
                except (TimeoutError, NatsTimeoutError):
                    current, revision = await self._read(record_key(project, task_id))
                    if status.is_terminal(current.status):
                        yield _event(current, created=False, revision=max(revision, seen + 1))
                        return
                    continue
                event = tasks_pb2.TaskEvent()
                event.ParseFromString(msg.data)
                if event.task.project != project:
                    return
                if event.revision <= seen:
                    continue  # published late by a slower writer: a newer state was already sent
                seen = event.revision
                yield event
                if status.is_terminal(event.task.status):
                    return
        finally:
            await sub.unsubscribe()

    async def _has_events(self, task_id: str) -> bool:
        info = await self._bus.js.stream_info(EVENTS_STREAM, subjects_filter=event_subject(task_id))
        return bool(info.state.subjects)

    async def _publish(self, task: tasks_pb2.Task, *, created: bool, revision: int) -> None:
        """Best effort: the record is the truth and is already written. A lost event costs a
        watcher one intermediate state; failing here would make callers redo a write that worked."""
        event = _event(task, created=created, revision=revision)
        try:
            await self._bus.js.publish(event_subject(task.id), event.SerializeToString(), timeout=_PUBLISH_S)
        except NatsError as exc:
            log.warning("event not published", extra={"task_id": task.id, "error": repr(exc)})


def _groups(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _event(task: tasks_pb2.Task, *, created: bool, revision: int) -> tasks_pb2.TaskEvent:
    return tasks_pb2.TaskEvent(
        id=ids.event_id(),
        topic=topic_for(task, created=created),
        task=task,
        created_at=int(time.time()),
        revision=revision,
    )
