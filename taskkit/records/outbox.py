"""The outbox of the create path, and the sweeper that empties it: no task stays ``waiting`` forever.

A create writes, in order: an outbox entry (stream ``OUTBOX``, subject ``outbox.<family>.<kind>``,
body the record key), the record, the work message; then it deletes the outbox entry. Whatever
stops it part way — a crash, a NATS outage, a timeout, the caller going away — leaves the entry,
so the entries are exactly the creates that may not have been queued: the sweeper's index.

The sweeper runs in every API process, with no leader. Each pass walks its family's entries older
than ``sweep_after_seconds`` (the server hands them out one by one with ``next_by_subj``, so a pass
costs as many requests as there are unfinished creates, not as many as there are tasks) and, per
entry, lets the record decide: still ``waiting`` → publish the work message (``Nats-Msg-Id`` is the
task id, so two sweepers, or a sweeper and a slow creator, queue it once) and mark it ``queued``;
anything else, or no record at all (the create failed before storing it) → just drop the entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from nats.errors import Error as NatsError
from nats.js.errors import APIError, NotFoundError
from transmute.tasks.v1 import tasks_pb2

from taskkit.errors import Conflict, NotFound
from taskkit.records import status
from taskkit.records.jetstream import OUTBOX_STREAM, Bus, outbox_subject, work_subject
from taskkit.records.store import TaskStore

log = logging.getLogger(__name__)

_PUBLISH_TIMEOUT_S = 5.0
_MAX_PER_PASS = 1000
_NO_MESSAGE = 10057  # JetStream's err_code for deleting a message that is already gone


def queued(task: tasks_pb2.Task) -> None:
    """The change that records a published work message (a worker may have moved it on already)."""
    if task.status == status.WAITING:
        task.status = status.QUEUED


class Outbox:
    """Writes and clears the outbox entries of one family's creates."""

    def __init__(self, bus: Bus, family: str) -> None:
        self._bus = bus
        self._family = family

    async def add(self, kind: str, key: str) -> int:
        """Record that ``key`` is about to be created; returns the entry's sequence."""
        ack = await self._bus.js.publish(
            outbox_subject(self._family, kind), key.encode(), timeout=_PUBLISH_TIMEOUT_S
        )
        return int(ack.seq)

    async def publish_work(self, kind: str, key: str, task_id: str) -> None:
        await self._bus.js.publish(
            work_subject(self._family, kind),
            key.encode(),
            headers={"Nats-Msg-Id": task_id},
            timeout=_PUBLISH_TIMEOUT_S,
        )

    async def clear(self, seq: int) -> None:
        """Drop an entry; another process may have dropped it first."""
        try:
            await self._bus.js.delete_msg(OUTBOX_STREAM, seq)
        except APIError as exc:
            if exc.err_code != _NO_MESSAGE:
                raise


@dataclass(frozen=True)
class SweepReport:
    republished: int = 0
    cleared: int = 0


class Sweeper:
    """Re-publishes the work of creates that stopped between storing a record and queueing it."""

    def __init__(self, *, bus: Bus, store: TaskStore, family: str, after_s: float, interval_s: float) -> None:
        self._bus = bus
        self._store = store
        self._outbox = Outbox(bus, family)
        self._family = family
        self._after_s = after_s
        self._interval_s = interval_s

    async def run(self, stop: asyncio.Event) -> None:
        """Sweep every ``interval_s`` until ``stop``; a NATS outage only delays the next pass."""
        while not stop.is_set():
            try:
                report = await self.sweep_once()
                if report.republished:
                    log.info("sweeper queued stranded tasks", extra={"count": report.republished})
            except NatsError as exc:
                log.warning("sweep failed; retrying", extra={"error": repr(exc)})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._interval_s)

    async def sweep_once(self, *, now: datetime | None = None) -> SweepReport:
        """One pass over this family's entries older than the threshold."""
        now = now or datetime.now(UTC)
        subject = outbox_subject(self._family, "*")
        republished = cleared = 0
        seq = 1
        for _ in range(_MAX_PER_PASS):
            try:
                entry = await self._bus.js.get_msg(OUTBOX_STREAM, seq=seq, subject=subject, next=True)
            except NotFoundError:
                break
            seq = int(entry.seq or 0) + 1
            if entry.time is not None and (now - entry.time).total_seconds() < self._after_s:
                break  # entries are in time order: the rest are younger still
            kind = (entry.subject or "").rsplit(".", 1)[-1]
            if await self._settle(kind, (entry.data or b"").decode()):
                republished += 1
            await self._outbox.clear(int(entry.seq or 0))
            cleared += 1
        return SweepReport(republished=republished, cleared=cleared)

    async def _settle(self, kind: str, key: str) -> bool:
        """Queue the task of one entry if it is still waiting; True when it was."""
        try:
            task = await self._store.get_by_key(key)
        except NotFound:
            return False  # never stored: its create failed and said so
        if task.status != status.WAITING:
            return False
        await self._outbox.publish_work(kind, key, task.id)
        with contextlib.suppress(Conflict, NotFound):
            await self._store.mutate(key, queued)
        log.info("stranded task queued", extra={"task_id": task.id, "kind": kind})
        return True
