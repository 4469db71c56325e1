"""``/tasks``: create, get, list, cancel, and the Server-Sent Events stream of one task."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

import grpc
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from google.protobuf import struct_pb2
from transmute.tasks.v1 import tasks_pb2

from gateway.api.deps import ClientsDep, ProjectDep, SettingsDep, VersionDep
from gateway.core.clients import metadata
from gateway.kinds import KINDS
from gateway.presenter import task_json
from gateway.schemas import ErrorBody, TaskCreate, TaskOut
from gateway.versions import V2025_08_20, page_window_a25, request_from_a25, task_to_a25
from taskkit import options_json, status
from taskkit.errors import InvalidRequest

router = APIRouter(prefix="/tasks", tags=["tasks"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 404, 409, 501, 503)
}
_SPEC_FIELDS = ("filename", "folder", "ref", "webhook_url")


def _shape(task: tasks_pb2.Task, version: str) -> dict[str, Any]:
    body = task_json(task)
    return task_to_a25(body) if version == V2025_08_20 else body


def _spec(body: dict[str, Any]) -> tasks_pb2.TaskSpec:
    spec = tasks_pb2.TaskSpec(url=body.get("url") or "")
    for name in _SPEC_FIELDS:
        value = body.get(name)
        if value is not None:
            if not isinstance(value, str):
                raise InvalidRequest(f"'{name}' must be a string.")
            setattr(spec, name, value)
    meta = body.get("metadata")
    if meta is not None:
        if not isinstance(meta, dict):
            raise InvalidRequest("'metadata' must be a JSON object.")
        struct = struct_pb2.Struct()
        struct.update(meta)
        spec.metadata.CopyFrom(struct)
    return spec


@router.post("", status_code=201, response_model=TaskOut, responses=_ERRORS)
async def create_task(
    payload: TaskCreate, project: ProjectDep, clients: ClientsDep, settings: SettingsDep, version: VersionDep
) -> JSONResponse:
    """Create a task: ``{url, kind, options}`` → 201 with the task in status ``waiting``."""
    body = request_from_a25(payload.model_dump(exclude_unset=True))
    if body.get("file_id") is not None:
        raise InvalidRequest(
            "'file_id' inputs are not supported here; pass 'url' (e.g. a signed link from POST /signatures)."
        )
    kind = body["kind"]
    route = KINDS.get(kind)
    if route is None:
        raise InvalidRequest(f"kind must be one of {', '.join(KINDS)} (got {kind!r}).")
    options = options_json.from_api(body.get("options"), route.options)
    stub = clients.family(route.family, kind)
    request = route.request(spec=_spec(body), options=options)
    task = await getattr(stub, route.rpc)(
        request, metadata=metadata(project), timeout=settings.request_timeout_seconds
    )
    return JSONResponse(_shape(task, version), status_code=201)


@router.get("", response_model=list[TaskOut], responses=_ERRORS)
async def list_tasks(
    request: Request,
    project: ProjectDep,
    clients: ClientsDep,
    settings: SettingsDep,
    version: VersionDep,
    limit: Annotated[int | None, Query(description="1..100, default 20")] = None,
    after: Annotated[str | None, Query(description="a task id: the page after it")] = None,
    before: Annotated[str | None, Query(description="a task id: the page before it")] = None,
    order: Literal["asc", "desc"] = "desc",
    status_: Annotated[str | None, Query(alias="status")] = None,
    kind: str | None = None,
    run_id: str | None = None,
    page: Annotated[int | None, Query(description="page number (2025-08-20 only)")] = None,
) -> JSONResponse:
    """List tasks, newest first; cursor pagination with ``Link``, ``Has-More`` and ``Limit`` headers."""
    query = tasks_pb2.ListTasksRequest(
        limit=20 if limit is None else limit,
        order=tasks_pb2.SORT_ORDER_ASC if order == "asc" else tasks_pb2.SORT_ORDER_DESC,
    )
    if version == V2025_08_20 and page is not None:
        query.offset, query.limit = page_window_a25(page, limit)
    if not 1 <= query.limit <= 100:
        raise InvalidRequest(f"limit must be between 1 and 100 (got {query.limit}).")
    if status_ is not None:
        value = status.from_name(status_)
        if value is None:
            raise InvalidRequest(f"status must be one of {', '.join(status.names())} (got {status_!r}).")
        query.status = value
    if kind is not None:
        if kind not in KINDS:
            raise InvalidRequest(f"kind must be one of {', '.join(KINDS)} (got {kind!r}).")
        query.kind = kind
    for name, cursor in (("after", after), ("before", before), ("run_id", run_id)):
        if cursor is not None:
            setattr(query, name, cursor)
    result = await clients.tasks.ListTasks(
        query, metadata=metadata(project), timeout=settings.request_timeout_seconds
    )
    headers = {"Has-More": "true" if result.has_more else "false", "Limit": str(query.limit)}
    if result.has_more and result.tasks:
        params = {k: v for k, v in request.query_params.items() if k not in ("after", "before", "page")}
        if version == V2025_08_20 and page is not None:
            params["page"] = str(page + 1)  # page-number clients keep paging by number
        else:
            params["after"] = result.tasks[-1].id
        headers["Link"] = f'<{settings.base_url}/tasks?{urlencode(params)}>; rel="next"'
    return JSONResponse([_shape(t, version) for t in result.tasks], headers=headers)


@router.get("/{task_id}", response_model=TaskOut, responses=_ERRORS)
async def get_task(
    task_id: str, project: ProjectDep, clients: ClientsDep, settings: SettingsDep, version: VersionDep
) -> JSONResponse:
    task = await clients.tasks.GetTask(
        tasks_pb2.GetTaskRequest(id=task_id),
        metadata=metadata(project),
        timeout=settings.request_timeout_seconds,
    )
    return JSONResponse(_shape(task, version))


@router.post("/{task_id}/cancel", response_model=TaskOut, responses=_ERRORS)
async def cancel_task(
    task_id: str, project: ProjectDep, clients: ClientsDep, settings: SettingsDep, version: VersionDep
) -> JSONResponse:
    """Cancel a task (an extension: ittybit documents none). 409 when it already finished."""
    task = await clients.tasks.CancelTask(
        tasks_pb2.CancelTaskRequest(id=task_id),
        metadata=metadata(project),
        timeout=settings.request_timeout_seconds,
    )
    return JSONResponse(_shape(task, version))


@router.get(
    "/{task_id}/events",
    responses={200: {"content": {"text/event-stream": {}}, "description": "one event per change"}, **_ERRORS},
)
async def task_events(
    task_id: str, project: ProjectDep, clients: ClientsDep, settings: SettingsDep, version: VersionDep
) -> StreamingResponse:
    """Server-Sent Events: every change of the task (``task.created``, ``task.updated``,
    ``task.succeeded``, ``task.failed``), ``data`` = the task; closes after a terminal status."""
    call = clients.tasks.WatchTask(
        tasks_pb2.WatchTaskRequest(id=task_id),
        metadata=metadata(project),
        timeout=settings.task_timeout_seconds,
    )
    first = await call.read()  # surfaces 404 etc. before the stream starts

    async def stream() -> AsyncIterator[bytes]:
        event = first
        try:
            while event is not grpc.aio.EOF:
                data = json.dumps(_shape(event.task, version))
                yield f"id: {event.id}\nevent: {event.topic}\ndata: {data}\n\n".encode()
                event = await call.read()
        finally:
            call.cancel()

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
