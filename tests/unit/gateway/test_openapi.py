"""The OpenAPI document and the bodies cannot drift: every route with a response model sends what
that model describes, and the document is built from those models.

Each route is called through the real app (``TestClient``) with the family services faked at the
gRPC stub (no backend runs), and each body must survive a strict round trip through the route's
model: validated, dumped again with only the fields it set, and equal as JSON to what was sent, so
a key the model does not know, a missing required field, a wrong type, or an int the model would
turn into a float all fail. The task routes render their bodies by hand (their shape depends on
``Accept-Version``), so this is what holds their default body to ``TaskOut``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, get_args, get_origin
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import SecretStr, TypeAdapter, ValidationError
from transmute.tasks.v1 import tasks_pb2

from gateway import create_app
from gateway.api import ROUTERS, TaskOut
from taskkit.config import Settings
from taskkit.rpc import Clients

API_KEY = "ittybit_openapi_test"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
NOW = 1_760_000_000


def _summary() -> tasks_pb2.Task:
    """A succeeded task with every field the D25 body can hold."""
    task = tasks_pb2.Task(
        id="task_summary",
        kind="summary",
        status=tasks_pb2.TASK_STATUS_SUCCEEDED,
        run_id="run_1",
        parent_id="task_parent",
        progress=100,
        url="https://example.com/a.mp4",
        filename="notes.json",
        folder="out",
        ref="mine",
        created_at=NOW - 10,
        started_at=NOW - 5,
        finished_at=NOW,
        updated_at=NOW,
        cache_hit=True,
        project="default",
    )
    task.options.update({"language": "en"})
    task.metadata.update({"a": {"b": [1, 2.5, None, "x", True]}})
    task.inputs.add(
        kind="source", type="video/mp4", width=1920, height=1080, duration=12.5, filesize=1234,
        codec="h264", audio_codec="aac", fps=30.0, channels=2, url="https://example.com/in",
    )  # fmt: skip
    package = task.outputs.add(kind="source", type="application/x-mpegURL", url="https://x/o.m3u8")
    package.renditions.add(type="video", width=640, height=360, bitrate=800_000, codec="avc1.64001f")
    package.renditions.add(type="audio", codec="mp4a.40.2", language="en", label="English")
    task.outputs.add(kind="track", type="text/vtt", language="en", label="English", url="https://x/t.vtt")
    task.summary.title = "A title"
    task.summary.description = "What it is about."
    task.summary.tags.extend(["a", "b"])
    task.summary.languages.extend(["en"])
    return task


def _speech() -> tasks_pb2.Task:
    task = tasks_pb2.Task(
        id="task_speech", kind="speech", status=tasks_pb2.TASK_STATUS_SUCCEEDED, run_id="run_2",
        url="https://example.com/b.wav", created_at=NOW, updated_at=NOW, cache_hit=False,
    )  # fmt: skip
    task.speech.text.extend(["Hello."])
    task.speech.languages.extend(["en"])
    task.speech.duration = 1.5
    return task


def _failed() -> tasks_pb2.Task:
    return tasks_pb2.Task(
        id="task_failed", kind="image", status=tasks_pb2.TASK_STATUS_FAILED, run_id="run_3",
        url="https://example.com/c.png", error="The input is not an image.", created_at=NOW, updated_at=NOW,
    )  # fmt: skip


def _waiting() -> tasks_pb2.Task:
    """A task just created: every optional field unset."""
    return tasks_pb2.Task(
        id="task_new", kind="video", status=tasks_pb2.TASK_STATUS_WAITING, run_id="run_4",
        url="https://example.com/d.mp4", created_at=NOW, updated_at=NOW,
    )  # fmt: skip


TASKS = {task.id: task for task in (_summary(), _speech(), _failed(), _waiting())}


class _Call:
    """What a grpc.aio unary call is to the gateway: awaitable, with trailing metadata."""

    def __init__(self, reply: Any) -> None:
        self.reply = reply

    def __await__(self) -> Any:
        async def reply() -> Any:
            return self.reply

        return reply().__await__()

    async def trailing_metadata(self) -> tuple[tuple[str, str], ...]:
        return ()


class _Tasks:
    def GetTask(self, request: tasks_pb2.GetTaskRequest, **_: Any) -> _Call:
        return _Call(TASKS[request.id])

    def ListTasks(self, request: tasks_pb2.ListTasksRequest, **_: Any) -> _Call:
        return _Call(tasks_pb2.ListTasksResponse(tasks=list(TASKS.values()), has_more=False))

    def CancelTask(self, request: tasks_pb2.CancelTaskRequest, **_: Any) -> _Call:
        cancelled = tasks_pb2.Task()
        cancelled.CopyFrom(TASKS[request.id])
        cancelled.status = tasks_pb2.TASK_STATUS_CANCELLED
        return _Call(cancelled)


class _Family:
    def __getattr__(self, rpc: str) -> Callable[..., _Call]:
        return lambda request, **_: _Call(_waiting())


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    fake = Clients(tasks=_Tasks(), families={name: _Family() for name in ("media", "tracks", "intelligence")})  # type: ignore[arg-type]
    monkeypatch.setattr(Clients, "from_settings", lambda settings: fake)
    settings = Settings(
        api_key=SecretStr(API_KEY),
        signing_secret=SecretStr("openapi-test-secret"),
        storage_backend="file",
        storage_dir=tmp_path,
    )
    return create_app(settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


def _upload(client: TestClient, folder: str | None) -> Any:
    grant = client.post(
        "/signatures", json={"filename": "a.txt", "folder": folder, "method": "put"}, headers=AUTH
    ).json()
    return client.put(urlsplit(grant["url"]).path, content=b"hello")


# (method, path) of each route with a response model → the real responses to check against it.
CALLS: dict[tuple[str, str], Callable[[TestClient], list[Any]]] = {
    ("GET", "/health"): lambda c: [c.get("/health")],
    ("POST", "/signatures"): lambda c: [
        c.post("/signatures", json={"filename": "a.mp4"}, headers=AUTH),
        c.post("/signatures", json={"filename": "a.mp4", "folder": "/up/", "method": "put"}, headers=AUTH),
    ],
    ("PUT", "/files/{expiry}/{sig}/{key}"): lambda c: [_upload(c, "uploads"), _upload(c, None)],
    ("POST", "/tasks"): lambda c: [
        c.post("/tasks", json={"kind": "video", "url": "https://example.com/d.mp4"}, headers=AUTH),
        c.post("/tasks", json={"kind": "summary", "url": "https://example.com/d.mp4"}, headers=AUTH),
    ],
    ("GET", "/tasks"): lambda c: [c.get("/tasks", headers=AUTH)],
    ("GET", "/tasks/{task_id}"): lambda c: [c.get(f"/tasks/{task_id}", headers=AUTH) for task_id in TASKS],
    ("POST", "/tasks/{task_id}/cancel"): lambda c: [
        c.post(f"/tasks/{task_id}/cancel", headers=AUTH) for task_id in TASKS
    ],
}


def _routes(app: FastAPI) -> list[APIRoute]:
    """The app's own routes and its routers' (an included router's routes stay behind it)."""
    routes = [*app.routes, *(route for router in ROUTERS for route in router.routes)]
    return [route for route in routes if isinstance(route, APIRoute)]


def _modelled(app: FastAPI) -> dict[tuple[str, str], APIRoute]:
    return {
        (method, route.path_format): route
        for route in _routes(app)
        if route.response_model is not None
        for method in route.methods or ()
    }


def _assert_conforms(model: Any, body: bytes) -> None:
    adapter: TypeAdapter[Any] = TypeAdapter(model)
    parsed = adapter.validate_json(body)
    again = adapter.dump_python(parsed, mode="json", exclude_unset=True)
    assert json.dumps(again, sort_keys=True) == json.dumps(json.loads(body), sort_keys=True)


def test_every_route_with_a_response_model_is_called_here(app: FastAPI) -> None:
    documented = {(method.upper(), path) for path, item in app.openapi()["paths"].items() for method in item}
    found = {(m, r.path_format) for r in _routes(app) if r.include_in_schema for m in r.methods or ()}
    assert found == documented  # no route is missed here
    assert set(_modelled(app)) == set(CALLS)


@pytest.mark.parametrize("operation", sorted(CALLS), ids=" ".join)
def test_a_real_body_is_what_the_routes_model_says(
    app: FastAPI, client: TestClient, operation: tuple[str, str]
) -> None:
    route = _modelled(app)[operation]
    for response in CALLS[operation](client):
        assert response.status_code == (route.status_code or 200), response.text
        _assert_conforms(route.response_model, response.content)


def test_the_document_builds_from_the_routes_models(app: FastAPI) -> None:
    document = app.openapi()
    schemas = document["components"]["schemas"]
    for (method, path), route in _modelled(app).items():
        status = str(route.status_code or 200)
        schema = document["paths"][path][method.lower()]["responses"][status]["content"]["application/json"]
        model = route.response_model
        if get_origin(model) is list:
            assert schema["schema"]["type"] == "array", (method, path)
            schema, model = schema["schema"]["items"], get_args(model)[0]
        else:
            schema = schema["schema"]
        assert schema == {"$ref": f"#/components/schemas/{model.__name__}"}, (method, path)
        assert set(schemas[model.__name__]["properties"]) == set(model.model_fields), (method, path)


def test_the_2025_08_20_body_is_not_a_task_out(client: TestClient) -> None:
    """Why the task routes keep their JSONResponse: the older version's shape is another one."""
    response = client.get("/tasks/task_summary", headers={**AUTH, "Accept-Version": "2025-08-20"})
    assert response.status_code == 200
    with pytest.raises((ValidationError, AssertionError)):
        _assert_conforms(TaskOut, response.content)
