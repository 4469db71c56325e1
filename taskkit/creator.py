"""Creating a task: validate → store the record (waiting) → publish the work message → queued.

The work message carries only the record key (a claim check); its ``Nats-Msg-Id`` is the task
id, so a retried publish within the stream's duplicate window is stored once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from google.protobuf import json_format
from transmute.tasks.v1 import tasks_pb2

from taskkit import ids, status
from taskkit.errors import InputError, InvalidRequest, Unavailable
from taskkit.fetch import check_scheme
from taskkit.jetstream import Bus, work_subject
from taskkit.store import TaskStore, mark_failed, record_key

log = logging.getLogger(__name__)

_PUBLISH_TIMEOUT_S = 5.0
# A record must fit in one NATS message (1 MiB by default) with room for inputs, outputs and results.
MAX_RECORD_BYTES = 256 * 1024


class TaskCreator:
    """Stores new tasks of one family and queues them for that family's workers."""

    def __init__(self, *, bus: Bus, store: TaskStore, family: str) -> None:
        self._bus = bus
        self._store = store
        self._family = family

    async def create(
        self, *, project: str, kind: str, spec: tasks_pb2.TaskSpec, options: dict
    ) -> tasks_pb2.Task:
        """Store and queue a task whose options were already validated; return it as stored."""
        if not spec.url:
            raise InvalidRequest("The 'url' field is required.", kind="url_required")
        try:
            check_scheme(spec.url)
        except InputError as exc:
            raise InvalidRequest(exc.message[:1].upper() + exc.message[1:] + ".") from None
        task = tasks_pb2.Task(
            id=ids.task_id(),
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
        created = await self._store.create(task)
        key = record_key(project, task.id)
        try:
            await self._bus.js.publish(
                work_subject(self._family, kind),
                key.encode(),
                headers={"Nats-Msg-Id": task.id},
                timeout=_PUBLISH_TIMEOUT_S,
            )
        except BaseException as exc:
            # Stored but maybe not queued (a NATS fault, or the caller's deadline cancelled us):
            # never leave it waiting forever. If the message did go out, the worker sees the
            # failed record and skips it.
            with contextlib.suppress(Exception):
                await asyncio.shield(self._store.mutate(key, mark_failed("the task could not be queued")))
            if isinstance(exc, Exception):
                raise Unavailable("The task could not be queued; try again shortly.") from exc
            raise
        with contextlib.suppress(Exception):
            await self._store.mutate(key, _queued)  # cosmetic: a worker may already have moved it on
        log.info("task created", extra={"task_id": task.id, "kind": kind, "project": project})
        return created


def _queued(task: tasks_pb2.Task) -> None:
    if task.status == status.WAITING:
        task.status = status.QUEUED
