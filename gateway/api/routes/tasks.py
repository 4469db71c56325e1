"""``/tasks``: create, get, list, cancel, and the Server-Sent Events stream of one task."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

import grpc
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from transmute.tasks.v1 import tasks_pb2

from gateway.api.deps import ClientsDep, ProjectDep, SettingsDep, VersionDep
from gateway.api.schemas import ErrorBody, TaskCreate, TaskOut
from gateway.api.task_json import task_json
from gateway.api.versions import MAX_PAGE_NUMBER, V2025_08_20, page_window_a25, request_from_a25, task_to_a25
from gateway.core import CheckedRoute, describe_rpc_error, retry
from taskkit import ids
from taskkit.config import Settings
from taskkit.errors import InvalidRequest
from taskkit.options import proto_json
from taskkit.records import status
from taskkit.rpc import KINDS, metadata, project_metadata

router = APIRouter(prefix="/tasks", tags=["tasks"], route_class=CheckedRoute)

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 404, 409, 413, 422, 501, 503)
}
_SPEC_FIELDS = ("filename", "folder", "ref", "webhook_url")
_KEEPALIVE_S = 15.0
_MAX_REVISION = 2**63 - 1  # KV revisions are stream sequences (uint64); past int64 none exists


def _shape(task: tasks_pb2.Task, version: str) -> dict[str, Any]:
    body = task_json(task)
    return task_to_a25(body) if version == V2025_08_20 else body


def _spec(body: dict[str, Any], settings: Settings) -> tasks_pb2.TaskSpec:
    spec = tasks_pb2.TaskSpec(url=body.get("url") or "")
    for name in _SPEC_FIELDS:
        value = body.get(name)
        if value is not None:
            if not isinstance(value, str):
                raise InvalidRequest(f"'{name}' must be a string.")
            setattr(spec, name, value)
    meta = body.get("metadata")
    if meta is not None:  # a JSON object (TaskCreate); its bounds are the create servicer's to check
        spec.metadata.update(meta)
    return spec


def _links(
    request: Request, base_url: str, result: tasks_pb2.ListTasksResponse, page: int | None
) -> dict[str, str]:
    """RFC 5988 ``Link``: ``next`` continues past the last task of this page. After a ``before``
    query, ``Has-More`` speaks of the tasks further back, so those are linked as ``prev``."""
    params = {k: v for k, v in request.query_params.items() if k not in ("after", "before", "page")}
    links = []
    if page is not None:  # 2025-08-20 clients page by number
        if result.has_more:
            links.append((urlencode({**params, "page": page + 1}), "next"))
    elif "before" in request.query_params:
        if result.tasks:
            links.append((urlencode({**params, "after": result.tasks[-1].id}), "next"))
            if result.has_more:
                links.append((urlencode({**params, "before": result.tasks[0].id}), "prev"))
    elif result.has_more and result.tasks:
        links.append((urlencode({**params, "after": result.tasks[-1].id}), "next"))
    if not links:
        return {}
    return {"Link": ", ".join(f'<{base_url}/tasks?{query}>; rel="{rel}"' for query, rel in links)}


_LIST_HEADERS = {
    "Link": {
        "description": 'RFC 5988 links, e.g. <…/tasks?after=task_…>; rel="next"',
        "schema": {"type": "string"},
    },
    "Has-More": {"description": "true when more tasks follow", "schema": {"type": "string"}},
    "Limit": {"description": "the page size used", "schema": {"type": "integer"}},
}


def _revision(last_event_id: str) -> int:
    """The revision a ``Last-Event-ID`` names: the ``id`` of an event this API sent."""
    value = last_event_id.strip()
    if not (value.isascii() and value.isdigit()) or int(value) > _MAX_REVISION:
        raise InvalidRequest(f"Last-Event-ID must be the id of an event of this stream (got {value[:40]!r}).")
    return int(value)


@router.post("", status_code=201, response_model=TaskOut, responses=_ERRORS)
async def create_task(
    payload: TaskCreate,
    project: ProjectDep,
    clients: ClientsDep,
    settings: SettingsDep,
    version: VersionDep,
    idempotency_key: Annotated[
        str | None,
        Header(description="the same key and body within 24 h return the original task"),
    ] = None,
) -> JSONResponse:
    """Create a task: ``{url, kind, options}`` → 201 with the task in status ``waiting``.

    With ``Idempotency-Key``, a repeat of the request returns the original task (with
    ``Idempotent-Replayed: true``) and the key with another body is 422 ``idempotency_key_reused``.
    Without one, retries inside the gateway still create one task (a task id per HTTP request).
    """
    body = request_from_a25(payload.model_dump(exclude_unset=True))
    if body.get("file_id") is not None:
        raise InvalidRequest(
            "'file_id' inputs are not supported here; pass 'url' (e.g. a signed link from POST /signatures)."
        )
    kind = body["kind"]
    route = KINDS.get(kind)
    if route is None:
        raise InvalidRequest(f"kind must be one of {', '.join(KINDS)} (got {kind!r}).")
    options = proto_json.from_api(body.get("options"), route.options)
    stub = clients.family(route.family, kind)
    request = route.request(spec=_spec(body, settings), options=options)
    meta = [*project_metadata(project), (metadata.TASK_ID_KEY, ids.task_id())]
    if idempotency_key is not None:
        meta.append((metadata.IDEMPOTENCY_KEY, metadata.check_idempotency_key(idempotency_key)))
    task, trailing = await retry.call(
        getattr(stub, route.rpc), request, metadata=meta, timeout_s=settings.request_timeout_seconds
    )
    replayed = idempotency_key is not None and (metadata.REPLAYED_KEY, "true") in trailing
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    # A JSONResponse, not the response model: its shape depends on Accept-Version (2025-08-20 is no TaskOut).
    return JSONResponse(_shape(task, version), status_code=201, headers=headers)


@router.get(
    "",
    response_model=list[TaskOut],
    responses={**_ERRORS, 200: {"description": "a bare JSON array of tasks", "headers": _LIST_HEADERS}},
)
async def list_tasks(
    request: Request,
    project: ProjectDep,
    clients: ClientsDep,
    settings: SettingsDep,
    version: VersionDep,
    limit: Annotated[int | None, Query(ge=1, le=100, description="1..100, default 20")] = None,
    after: Annotated[str | None, Query(max_length=64, description="a task id: the page after it")] = None,
    before: Annotated[str | None, Query(max_length=64, description="a task id: the page before it")] = None,
    order: Literal["asc", "desc"] = "desc",
    status_: Annotated[str | None, Query(alias="status", max_length=64)] = None,
    kind: Annotated[str | None, Query(max_length=64)] = None,
    run_id: Annotated[str | None, Query(max_length=64)] = None,
    parent_id: Annotated[str | None, Query(max_length=64, description="the children of this task")] = None,
    page: Annotated[
        int | None, Query(ge=1, le=MAX_PAGE_NUMBER, description="page number (2025-08-20 only)")
    ] = None,
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
    for name, cursor in (("after", after), ("before", before), ("run_id", run_id), ("parent_id", parent_id)):
        if cursor is not None:
            setattr(query, name, cursor)
    result, _ = await retry.call(
        clients.tasks.ListTasks,
        query,
        metadata=project_metadata(project),
        timeout_s=settings.request_timeout_seconds,
    )
    headers = {"Has-More": "true" if result.has_more else "false", "Limit": str(query.limit)}
    headers.update(_links(request, settings.base_url, result, page if version == V2025_08_20 else None))
    # A JSONResponse, not the response model: its shape depends on Accept-Version (2025-08-20 is no TaskOut).
    return JSONResponse([_shape(t, version) for t in result.tasks], headers=headers)


@router.get("/{task_id}", response_model=TaskOut, responses=_ERRORS)
async def get_task(
    task_id: str, project: ProjectDep, clients: ClientsDep, settings: SettingsDep, version: VersionDep
) -> JSONResponse:
    task, _ = await retry.call(
        clients.tasks.GetTask,
        tasks_pb2.GetTaskRequest(id=task_id),
        metadata=project_metadata(project),
        timeout_s=settings.request_timeout_seconds,
    )
    # A JSONResponse, not the response model: its shape depends on Accept-Version (2025-08-20 is no TaskOut).
    return JSONResponse(_shape(task, version))


@router.post("/{task_id}/cancel", response_model=TaskOut, responses=_ERRORS)
async def cancel_task(
    task_id: str, project: ProjectDep, clients: ClientsDep, settings: SettingsDep, version: VersionDep
) -> JSONResponse:
    """Cancel a task (an extension: ittybit documents none). 409 when it already finished."""
    task = await clients.tasks.CancelTask(
        tasks_pb2.CancelTaskRequest(id=task_id),
        metadata=project_metadata(project),
        timeout=settings.request_timeout_seconds,
    )
    # A JSONResponse, not the response model: its shape depends on Accept-Version (2025-08-20 is no TaskOut).
    return JSONResponse(_shape(task, version))


@router.get(
    "/{task_id}/events",
    responses={200: {"content": {"text/event-stream": {}}, "description": "one event per change"}, **_ERRORS},
)
async def task_events(
    task_id: str,
    project: ProjectDep,
    clients: ClientsDep,
    version: VersionDep,
    last_event_id: Annotated[str | None, Header(description="resume after this event id")] = None,
) -> StreamingResponse:
    """Server-Sent Events: every change of the task (``task.created``, ``task.updated``,
    ``task.succeeded``, ``task.failed``), ``data`` = the task; closes after a terminal status.

    Each event's ``id`` is the record's revision. A reconnect with ``Last-Event-ID`` gets the
    task's current state if it changed since, then what follows. If the backend goes away, the
    stream ends with an ``error`` event ``{kind, message}``; reconnecting resumes."""
    watch = tasks_pb2.WatchTaskRequest(id=task_id)
    if last_event_id is not None:
        watch.after_revision = _revision(last_event_id)
    # No deadline: a task may wait and run for a long time; the stream ends with the task, or when
    # the client goes away (the generator's finally cancels the call).
    call = clients.tasks.WatchTask(watch, metadata=project_metadata(project))
    first = await call.read()  # surfaces 404 etc. before the stream starts

    async def stream() -> AsyncIterator[bytes]:
        event = first
        pending: asyncio.Future[Any] | None = None
        try:
            while event is not grpc.aio.EOF:
                data = json.dumps(_shape(event.task, version))
                yield f"id: {event.revision}\nevent: {event.topic}\ndata: {data}\n\n".encode()
                pending = asyncio.ensure_future(call.read())
                while not (await asyncio.wait({pending}, timeout=_KEEPALIVE_S))[0]:
                    yield b": keep-alive\n\n"  # idle proxies must not cut a long wait
                event = pending.result()
        except grpc.aio.AioRpcError as exc:
            # The service or NATS went away mid-stream: say so, then end; clients reconnect with
            # Last-Event-ID and miss nothing.
            _, kind, message = describe_rpc_error(exc)
            yield f"event: error\ndata: {json.dumps({'kind': kind, 'message': message})}\n\n".encode()
        finally:
            if pending is not None:
                pending.cancel()
            call.cancel()

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
