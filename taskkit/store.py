"""Task records in the JetStream KV bucket, written only by compare-and-set.

Every write reads the current revision, applies a change, checks the lifecycle rule and
updates with ``last=revision``; a conflicting writer makes it retry from a fresh read. So a cancel
and a progress tick racing each other can never overwrite one another. Each successful write
publishes a ``TaskEvent`` on ``tasks.events.<task_id>``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import DeliverPolicy
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from transmute.tasks.v1 import tasks_pb2

from taskkit import ids, json_values, status
from taskkit.errors import Conflict, Contended, NotFound
from taskkit.jetstream import EVENTS_STREAM, TASKS_BUCKET, Bus, event_subject

log = logging.getLogger(__name__)

_CAS_ATTEMPTS = 20
_CAS_BACKOFF_S = 0.005
_WATCH_POLL_S = 2.0
_PUBLISH_S = 5.0

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
        return (
            (not self.status or task.status == self.status)
            and (self.kind is None or task.kind == self.kind)
            and (self.run_id is None or task.run_id == self.run_id)
            and (self.parent_id is None or task.parent_id == self.parent_id)
        )


class TaskStore:
    """Reads and compare-and-set writes of task records, plus their event stream."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    async def create(self, task: tasks_pb2.Task) -> tasks_pb2.Task:
        now = int(time.time())
        task.created_at = task.created_at or now
        task.updated_at = now
        check_renderable(task)
        revision = await self._bus.kv.create(record_key(task.project, task.id), task.SerializeToString())
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
        """One page of a project's tasks in id order (ids sort by creation time)."""
        task_ids = sorted(await self._task_ids(project))
        if query.descending:
            task_ids.reverse()
        if query.after is not None:
            task_ids = [t for t in task_ids if (t < query.after if query.descending else t > query.after)]
        backwards = query.before is not None and query.after is None
        if backwards:
            before = query.before or ""
            task_ids = [t for t in task_ids if (t > before if query.descending else t < before)]
            task_ids.reverse()  # walk towards the cursor's neighbours first
        found: list[tasks_pb2.Task] = []
        has_more = False
        skip = query.offset
        for task_id in task_ids:
            try:
                task = await self.get(project, task_id)
            except NotFound:
                continue  # deleted between listing and reading
            if not query.matches(task):
                continue
            if skip:
                skip -= 1
                continue
            if len(found) == query.limit:
                has_more = True
                break
            found.append(task)
        if backwards:
            found.reverse()
        return Page(tasks=found, has_more=has_more)

    async def _task_ids(self, project: str) -> list[str]:
        """The ids of one project's tasks, filtered by key prefix on the server in one request.

        (A KV watcher's "no more values" marker can arrive before values still in flight, which
        made listings come back short; the stream's per-subject state has no such race.)
        """
        prefix = f"$KV.{TASKS_BUCKET}.{project}."
        info = await self._bus.js.stream_info(f"KV_{TASKS_BUCKET}", subjects_filter=f"{prefix}>")
        return [subject[len(prefix) :] for subject in (info.state.subjects or {})]

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


def _event(task: tasks_pb2.Task, *, created: bool, revision: int) -> tasks_pb2.TaskEvent:
    return tasks_pb2.TaskEvent(
        id=ids.event_id(),
        topic=topic_for(task, created=created),
        task=task,
        created_at=int(time.time()),
        revision=revision,
    )
