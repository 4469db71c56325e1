"""Creating a task whose spec the API checked (``taskkit.api.create_servicer.check_spec``): claim
the idempotency key → outbox entry → record → work message.

Every step is safe to repeat, so a create retried after any fault ends with exactly one task:

- the task id comes from the client's ``Idempotency-Key`` (``taskkit.records.idempotency``) or from the
  caller (the gateway proposes one per HTTP request and reuses it on retries), else is new;
- the record is written with a KV ``create``: a second attempt finds it and returns it (replayed);
- the work message carries only the record key (a claim check) with ``Nats-Msg-Id`` = task id, so
  the stream stores it once within its duplicate window;
- the outbox entry (``taskkit.records.outbox``) is written before the record and cleared after the work
  message, so a create that stops in between is finished by the sweeper, never left waiting.

Once the record is stored the task exists, and the reply says so even if queueing has to be left to
the sweeper: a client is never told a create failed when it stored a task.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass

from google.protobuf import json_format
from nats.errors import Error as NatsError
from nats.js.errors import KeyWrongLastSequenceError
from transmute.tasks.v1 import tasks_pb2

from taskkit import ids
from taskkit.errors import Conflict, InvalidRequest, NotFound
from taskkit.records import status
from taskkit.records.idempotency import IdempotencyKeys
from taskkit.records.jetstream import Bus
from taskkit.records.outbox import Outbox, queued
from taskkit.records.store import TaskStore, record_key

log = logging.getLogger(__name__)

# A record must fit in one NATS message (1 MiB by default) with room for inputs, outputs and results.
MAX_RECORD_BYTES = 256 * 1024


@dataclass(frozen=True)
class Retry:
    """What makes a repeated create find the first one: a client key (with the request's
    fingerprint, to refuse a key reused for another request) and/or a proposed task id."""

    idempotency_key: str | None = None
    fingerprint: str = ""
    task_id: str | None = None


@dataclass(frozen=True)
class Created:
    task: tasks_pb2.Task
    replayed: bool  # the task existed already: this create was a repeat


class TaskCreator:
    """Stores new tasks of one family and queues them for that family's workers."""

    def __init__(self, *, bus: Bus, store: TaskStore, family: str) -> None:
        self._store = store
        self._outbox = Outbox(bus, family)
        self._keys = IdempotencyKeys(bus.keys)

    async def create(
        self,
        *,
        project: str,
        kind: str,
        spec: tasks_pb2.TaskSpec,
        options: dict,
        retry: Retry | None = None,
    ) -> Created:
        """Store and queue a task whose options were already validated; return it as stored."""
        retry = retry or Retry()
        task = _new_task(project, kind, spec, options, task_id=retry.task_id or ids.task_id())
        replayed = False
        if retry.idempotency_key is not None:
            claim = await self._keys.claim(
                project, retry.idempotency_key, fingerprint=retry.fingerprint, task_id=task.id
            )
            task.id, replayed = claim.task_id, claim.replayed
        key = record_key(project, task.id)
        entry = await self._outbox.add(kind, key)
        try:
            stored = await self._store.create(task)
        except KeyWrongLastSequenceError:
            stored, replayed = await self._store.get_by_key(key), True
            if stored.kind != kind:
                raise InvalidRequest(f"Task {task.id} already exists with another kind.") from None
        if stored.status != status.WAITING:
            await self._outbox.clear(entry)
            return Created(stored, replayed)
        try:
            await self._outbox.publish_work(kind, key, task.id)
        except NatsError as exc:
            # Stored, not queued: the entry stays and the sweeper queues it. The task exists.
            log.warning(
                "task stored; the sweeper will queue it", extra={"task_id": task.id, "error": repr(exc)}
            )
            return Created(stored, replayed)
        with contextlib.suppress(Conflict, NotFound, NatsError):
            await self._store.mutate(key, queued)  # cosmetic: a worker may be ahead
        with contextlib.suppress(NatsError):
            await self._outbox.clear(entry)
        log.info("task created", extra={"task_id": task.id, "kind": kind, "project": project})
        return Created(stored, replayed)


def _new_task(
    project: str, kind: str, spec: tasks_pb2.TaskSpec, options: dict, *, task_id: str
) -> tasks_pb2.Task:
    """The record of a new task, or InvalidRequest when it would be larger than a record may be."""
    task = tasks_pb2.Task(
        id=task_id,
        kind=kind,
        status=status.WAITING,
        run_id=spec.run_id if spec.HasField("run_id") else ids.run_id(),
        project=project,
        url=spec.url,
        created_at=int(time.time()),
    )
    for name in ("parent_id", "filename", "folder", "ref", "webhook_url"):
        if spec.HasField(name):
            setattr(task, name, getattr(spec, name))
    json_format.ParseDict(options, task.options)
    task.metadata.CopyFrom(spec.metadata)
    if task.ByteSize() > MAX_RECORD_BYTES:
        raise InvalidRequest(
            f"The task's options and metadata are too large ({task.ByteSize()} bytes encoded; "
            f"the limit is {MAX_RECORD_BYTES})."
        )
    return task
