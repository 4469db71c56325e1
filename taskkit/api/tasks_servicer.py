"""The shared ``transmute.tasks.v1.Tasks`` service: get, list, cancel and watch tasks of any kind.

Every family server serves it, since task records are shared. Outgoing tasks get fresh signed
links for their outputs (records store only storage keys, so links never go stale in storage).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator

import grpc
from transmute.tasks.v1 import tasks_pb2, tasks_pb2_grpc

from taskkit.config import Settings
from taskkit.errors import Conflict, InvalidRequest, NotFound
from taskkit.records import status
from taskkit.records.jetstream import Bus, cancel_subject
from taskkit.records.store import ListQuery, TaskStore, record_key
from taskkit.rpc.metadata import project_of
from taskkit.storage import signing

log = logging.getLogger(__name__)

_MAX_CHILDREN = 100  # a parent's children cancelled with it (tracks kinds make one)

MAX_PAGE = 100
DEFAULT_PAGE = 20


def present(task: tasks_pb2.Task, settings: Settings) -> tasks_pb2.Task:
    """The task as callers see it: input URL on the input entry, signed links on outputs (a package's
    link is a grant for its folder, so the playlist's relative references resolve)."""
    shown = tasks_pb2.Task()
    shown.CopyFrom(task)
    for entry in shown.inputs:
        entry.url = task.url
    secret = settings.signing_secret.get_secret_value()
    for entry in shown.outputs:
        if entry.HasField("key"):
            entry.url = signing.signed_url(
                settings.base_url,
                secret,
                entry.key,
                ttl=settings.link_ttl_seconds,
                prefix=entry.folder if entry.HasField("folder") else None,
            )
    return shown


def list_query(request: tasks_pb2.ListTasksRequest) -> ListQuery:
    limit = request.limit or DEFAULT_PAGE
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE} (got {limit}).")
    if request.HasField("after") and request.HasField("before"):
        raise InvalidRequest("Use either 'after' or 'before', not both.")
    return ListQuery(
        limit=limit,
        after=request.after if request.HasField("after") else None,
        before=request.before if request.HasField("before") else None,
        descending=request.order != tasks_pb2.SORT_ORDER_ASC,
        status=request.status,
        kind=request.kind if request.HasField("kind") else None,
        run_id=request.run_id if request.HasField("run_id") else None,
        parent_id=request.parent_id if request.HasField("parent_id") else None,
        offset=max(request.offset, 0),
    )


class TasksServicer(tasks_pb2_grpc.TasksServicer):
    def __init__(self, *, bus: Bus, store: TaskStore, settings: Settings) -> None:
        self._bus = bus
        self._store = store
        self._settings = settings

    async def GetTask(
        self, request: tasks_pb2.GetTaskRequest, context: grpc.aio.ServicerContext
    ) -> tasks_pb2.Task:
        task = await self._store.get(project_of(context), request.id)
        return present(task, self._settings)

    async def ListTasks(
        self, request: tasks_pb2.ListTasksRequest, context: grpc.aio.ServicerContext
    ) -> tasks_pb2.ListTasksResponse:
        page = await self._store.list_page(project_of(context), list_query(request))
        return tasks_pb2.ListTasksResponse(
            tasks=[present(t, self._settings) for t in page.tasks], has_more=page.has_more
        )

    async def CancelTask(
        self, request: tasks_pb2.CancelTaskRequest, context: grpc.aio.ServicerContext
    ) -> tasks_pb2.Task:
        project = project_of(context)
        task = await self._cancel(project, request.id)
        await self._cancel_children(project, task.id)
        return present(task, self._settings)

    async def _cancel(self, project: str, task_id: str) -> tasks_pb2.Task:
        def cancel(task: tasks_pb2.Task) -> None:
            if status.is_terminal(task.status):
                raise Conflict(f"Task {task.id} is already {status.name(task.status)}.")
            task.status = status.CANCELLED
            task.finished_at = int(time.time())

        task = await self._store.mutate(record_key(project, task_id), cancel)
        # Tell whichever worker holds it to kill its subprocess now.
        await self._bus.nc.publish(cancel_subject(task.id), b"")
        log.info("task cancelled", extra={"task_id": task.id})
        return task

    async def _cancel_children(self, project: str, parent_id: str) -> None:
        """Cancel the parent's unfinished children here too: its worker cascades the cancel only
        while it holds the parent, and a parent waiting for redelivery (its worker died) has none.
        Children are created after their parent, so the index is read from the parent onwards
        only, never the project's older tasks."""
        query = ListQuery(limit=_MAX_CHILDREN, parent_id=parent_id, after=parent_id, descending=False)
        page = await self._store.list_page(project, query)
        for child in page.tasks:
            if not status.is_terminal(child.status):
                with contextlib.suppress(Conflict, NotFound):  # it ended meanwhile
                    await self._cancel(project, child.id)

    async def WatchTask(
        self, request: tasks_pb2.WatchTaskRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[tasks_pb2.TaskEvent]:
        after = request.after_revision if request.HasField("after_revision") else 0
        async for event in self._store.watch(project_of(context), request.id, after=after):
            event.task.CopyFrom(present(event.task, self._settings))
            yield event
