"""API versions (``Accept-Version``), the official ittybit SDK 1.0.0 unchanged, and ``/openapi.json``."""

from __future__ import annotations

import io
import time
from collections import Counter
from datetime import datetime
from typing import Any

import httpx
import pytest
from ittybit import Ittybit
from ittybit.core.api_error import ApiError
from PIL import Image

from stack import Stack
from tests.conftest import create, wait_done
from tests.support import Corpus, Origin

A25 = {"Accept-Version": "2025-08-20"}
A25_STATUSES = {"pending", "processing", "completed", "failed", "cancelled"}
D25_STATUSES = [
    "waiting",
    "queued",
    "validating",
    "processing",
    "finishing",
    "succeeded",
    "failed",
    "cancelled",
]
A25_FIELDS = {
    "id", "object", "kind", "input", "options", "output", "status", "progress", "error",
    "created_by", "created", "updated", "parent_id", "workflow", "results",
}  # fmt: skip


@pytest.fixture(scope="module")
def image_url(origin: Origin, corpus: Corpus) -> str:
    return origin.url(corpus.png_small.name)


@pytest.fixture(scope="module")
def finished(api: httpx.Client, image_url: str) -> dict[str, Any]:
    """A succeeded 32-px PNG task, in the latest (D25) shape."""
    task = wait_done(api, create(api, "image", image_url, width=32, format="png")["id"])
    assert task["status"] == "succeeded", task
    return task


@pytest.fixture(scope="module")
def several(api: httpx.Client, image_url: str, finished: dict[str, Any]) -> list[str]:
    """At least four tasks in the project, newest first."""
    ids = [create(api, "image", image_url, width=8)["id"] for _ in range(3)]
    return [*reversed(ids), finished["id"]]


def parse_iso(value: Any) -> datetime:
    assert isinstance(value, str) and value.endswith("Z"), value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def assert_png_width(url: str, width: int) -> None:
    response = httpx.get(url, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(response.content)) as image:
        assert (image.format, image.width) == ("PNG", width)


# --- Accept-Version over plain HTTP --------------------------------------------------------------


def test_a25_create_is_pending_with_iso_timestamps(api: httpx.Client, image_url: str) -> None:
    """The flat A25 body is accepted and answered in the A25 shape."""
    response = api.post(
        "/tasks", json={"url": image_url, "kind": "image", "width": 16, "format": "png"}, headers=A25
    )
    assert response.status_code == 201, response.text
    task = response.json()
    assert set(task) == A25_FIELDS
    assert task["status"] == "pending" and task["object"] == "task"
    assert task["options"]["width"] == 16 and task["options"]["format"] == "png"
    assert task["input"] == {"url": image_url} and task["output"] is None
    created, updated = parse_iso(task["created"]), parse_iso(task["updated"])
    assert abs(created.timestamp() - time.time()) < 60 and updated >= created
    wait_done(api, task["id"])


def test_a25_get_of_a_finished_task(api: httpx.Client, finished: dict[str, Any]) -> None:
    response = api.get(f"/tasks/{finished['id']}", headers=A25)
    assert response.status_code == 200, response.text
    task = response.json()
    assert set(task) == A25_FIELDS
    assert task["status"] == "completed" and task["progress"] == 100
    assert parse_iso(task["created"]).timestamp() == finished["created_at"]
    assert parse_iso(task["updated"]).timestamp() == finished["updated_at"]
    assert task["input"]["url"] == finished["url"] and task["input"]["width"] == 64
    assert task["output"]["width"] == 32 and task["output"]["format"] == "png"
    assert task["results"]["url"] == task["output"]["url"]
    assert_png_width(task["output"]["url"], 32)


def test_a25_list_is_a_bare_array_in_the_old_shape(api: httpx.Client, finished: dict[str, Any]) -> None:
    response = api.get("/tasks", params={"page": 1, "limit": 5}, headers=A25)
    assert response.status_code == 200, response.text
    tasks = response.json()
    assert isinstance(tasks, list) and 1 <= len(tasks) <= 5
    for task in tasks:
        assert set(task) == A25_FIELDS and task["status"] in A25_STATUSES
        parse_iso(task["created"])


def test_a25_pages_do_not_overlap(api: httpx.Client, several: list[str]) -> None:
    first = api.get("/tasks", params={"page": 1, "limit": 2}, headers=A25).json()
    second = api.get("/tasks", params={"page": 2, "limit": 2}, headers=A25).json()
    latest = api.get("/tasks", params={"limit": 4}).json()
    assert [t["id"] for t in first + second] == [t["id"] for t in latest]


def test_a25_link_header_leads_to_the_next_page(api: httpx.Client, several: list[str]) -> None:
    """If a page-number response carries ``Link`` rel="next", following it gives the next page."""
    response = api.get("/tasks", params={"page": 2, "limit": 1}, headers=A25)
    assert response.status_code == 200 and response.headers["Has-More"] == "true"
    link = response.headers.get("link")
    if link is None:
        return
    followed = api.get(link.split(";")[0].strip("<>"), headers=A25).json()
    third = api.get("/tasks", params={"page": 3, "limit": 1}, headers=A25).json()
    assert [t["id"] for t in followed] == [t["id"] for t in third]


@pytest.mark.parametrize(
    ("version", "shape"),
    [("2025-08-20", "a25"), ("2024-08-21", "a25"), ("2025-12-01", "d25"), ("latest", "d25"), ("", "d25")],
)
def test_version_header_picks_the_shape(
    api: httpx.Client, finished: dict[str, Any], version: str, shape: str
) -> None:
    task = api.get(f"/tasks/{finished['id']}", headers={"Accept-Version": version}).json()
    if shape == "a25":
        assert task["status"] == "completed" and "created" in task and "created_at" not in task
    else:
        assert set(task) == set(api.get(f"/tasks/{finished['id']}").json())
        assert task["status"] == "succeeded" and isinstance(task["created_at"], int)


@pytest.mark.parametrize("version", ["banana", "2025-13-45", "2025/08/20", "v1"])
def test_garbage_version_is_400(api: httpx.Client, finished: dict[str, Any], version: str) -> None:
    for response in (
        api.get(f"/tasks/{finished['id']}", headers={"Accept-Version": version}),
        api.get("/tasks", headers={"Accept-Version": version}),
    ):
        assert response.status_code == 400, response.text
        body = response.json()
        assert set(body) == {"kind", "message"} and body["kind"] == "request_invalid"
        assert "Accept-Version" in body["message"] and "2025-08-20" in body["message"]


# --- the official SDK ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sdk(stack: Stack) -> Ittybit:
    """ittybit 1.0.0 with only the base URL and key changed."""
    return Ittybit(base_url=stack.base_url, api_key=stack.config.api_key)


def test_sdk_creates_and_polls_a_task_to_completion(sdk: Ittybit, image_url: str) -> None:
    created = sdk.tasks.create(request={"url": image_url, "kind": "image", "width": 32, "format": "png"})
    assert created.id.startswith("task_") and created.status == "pending"
    assert created.kind == "image"
    deadline = time.monotonic() + 60
    task = sdk.tasks.get(created.id)
    while task.status not in ("completed", "failed", "cancelled") and time.monotonic() < deadline:
        time.sleep(0.2)
        task = sdk.tasks.get(created.id)
    assert task.status == "completed", task
    assert task.progress == 100 and task.error is None
    assert task.created <= task.updated and task.created.tzinfo is not None
    assert task.output is not None and task.output["width"] == 32
    assert getattr(task.results, "url", None) == task.output["url"]  # an extra field A25 webhooks read
    url = task.output["url"]
    assert isinstance(url, str)
    assert_png_width(url, 32)


def test_sdk_lists_tasks(sdk: Ittybit, finished: dict[str, Any]) -> None:
    tasks = sdk.tasks.list(page=1, limit=5)
    assert isinstance(tasks, list) and 1 <= len(tasks) <= 5
    assert all(t.id and t.id.startswith("task_") for t in tasks)
    assert all(t.status in A25_STATUSES for t in tasks)


def test_sdk_get_of_a_missing_task_raises_api_error_404(sdk: Ittybit) -> None:
    with pytest.raises(ApiError) as caught:
        sdk.tasks.get("task_missing0000000000")
    assert caught.value.status_code == 404
    assert isinstance(caught.value.body, dict) and caught.value.body["kind"] == "task_not_found"


def test_sdk_with_a_wrong_key_raises_api_error_401(stack: Stack) -> None:
    client = Ittybit(base_url=stack.base_url, api_key="ittybit_wrong")
    with pytest.raises(ApiError) as caught:
        client.tasks.list(page=1, limit=1)
    assert caught.value.status_code == 401


# --- OpenAPI -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def openapi(stack: Stack) -> dict[str, Any]:
    response = httpx.get(stack.base_url + "/openapi.json", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Follow a local ``$ref`` (once is enough for FastAPI's documents)."""
    ref = schema.get("$ref")
    if ref is None:
        return schema
    node: Any = spec
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node  # type: ignore[no-any-return]


def json_schema(spec: dict[str, Any], operation: dict[str, Any], status: str) -> dict[str, Any]:
    return resolve(spec, operation["responses"][status]["content"]["application/json"]["schema"])


def test_openapi_lists_the_task_endpoints(openapi: dict[str, Any]) -> None:
    paths = openapi["paths"]
    for path, method in [
        ("/tasks", "post"),
        ("/tasks", "get"),
        ("/tasks/{task_id}", "get"),
        ("/tasks/{task_id}/cancel", "post"),
        ("/tasks/{task_id}/events", "get"),
        ("/signatures", "post"),
    ]:
        assert method in paths.get(path, {}), f"{method.upper()} {path} missing"
    assert "text/event-stream" in paths["/tasks/{task_id}/events"]["get"]["responses"]["200"]["content"]


def test_openapi_create_body_has_kind_url_options(openapi: dict[str, Any]) -> None:
    create_op = openapi["paths"]["/tasks"]["post"]
    body = resolve(openapi, create_op["requestBody"]["content"]["application/json"]["schema"])
    assert {"kind", "url", "options"} <= set(body["properties"])
    assert "kind" in body.get("required", [])
    assert "201" in create_op["responses"]


def test_openapi_task_schema_has_the_eight_statuses(openapi: dict[str, Any]) -> None:
    get_op = openapi["paths"]["/tasks/{task_id}"]["get"]
    task = json_schema(openapi, get_op, "200")
    assert task["properties"]["status"]["enum"] == D25_STATUSES
    assert {"id", "kind", "run_id", "options", "inputs", "outputs", "created_at"} <= set(task["properties"])
    created = json_schema(openapi, openapi["paths"]["/tasks"]["post"], "201")
    assert created == task
    listed = openapi["paths"]["/tasks"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert listed["type"] == "array" and resolve(openapi, listed["items"]) == task


def test_openapi_errors_are_the_error_body(openapi: dict[str, Any]) -> None:
    for path, method, status in [
        ("/tasks", "post", "400"),
        ("/tasks/{task_id}", "get", "404"),
        ("/tasks/{task_id}/cancel", "post", "409"),
        ("/signatures", "post", "400"),
    ]:
        error = json_schema(openapi, openapi["paths"][path][method], status)
        assert set(error["properties"]) == {"kind", "message"}, (path, method, status)


def test_openapi_documents_no_422(openapi: dict[str, Any]) -> None:
    """Validation errors are answered 400 ``{kind, message}``; the document must not promise 422."""
    documented = [
        f"{method.upper()} {path}"
        for path, operations in openapi["paths"].items()
        for method, operation in operations.items()
        if "422" in operation.get("responses", {})
    ]
    assert documented == []


def test_openapi_operation_ids_are_unique(openapi: dict[str, Any]) -> None:
    counts = Counter(
        operation["operationId"]
        for operations in openapi["paths"].values()
        for operation in operations.values()
        if "operationId" in operation
    )
    assert [name for name, count in counts.items() if count > 1] == []
