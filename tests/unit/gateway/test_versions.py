"""Version resolution and the D25 ⇄ A25 translation, including the real ittybit SDK 1.0.0 run
offline against an ``httpx.MockTransport`` that answers with :mod:`gateway.api.versions` output."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from ittybit import AsyncIttybit, Ittybit
from ittybit.core.api_error import ApiError

from gateway.api import (
    LATEST,
    V2025_08_20,
    page_window_a25,
    request_from_a25,
    resolve_version,
    task_to_a25,
)
from taskkit.errors import InvalidRequest

BASE_URL = "http://gateway.test"
API_KEY = "ittybit_test_key"


def d25_task(**overrides: Any) -> dict[str, Any]:
    """A succeeded video task as the gateway renders it in D25."""
    task: dict[str, Any] = {
        "id": "task_0mh1x2y3abcdefgh",
        "object": "task",
        "kind": "video",
        "status": "succeeded",
        "run_id": "run_0mh1x2y3abcdefgh",
        "parent_id": None,
        "progress": 100,
        "options": {"format": "mp4", "width": 640},
        "inputs": [
            {
                "kind": "source",
                "type": "video/mp4",
                "width": 1920,
                "height": 1080,
                "duration": 10.0,
                "filesize": 123,
                "codec": "h264",
                "url": "https://example.com/in.mp4",
            }
        ],
        "outputs": [
            {
                "kind": "source",
                "type": "video/mp4",
                "width": 640,
                "height": 360,
                "duration": 10.0,
                "filesize": 456,
                "codec": "h264",
                "url": "http://localhost:8080/files/out.mp4",
            }
        ],
        "metadata": {},
        "error": None,
        "created_at": 1735689825,
        "started_at": 1735689826,
        "finished_at": 1735689830,
        "updated_at": 1735689830,
        "url": "https://example.com/in.mp4",
        "filename": None,
        "folder": None,
        "ref": None,
    }
    task.update(overrides)
    return task


# --- resolve_version -------------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "", "latest", " LATEST ", "2025-09-15", "2026-03-01"])
def test_resolve_version_latest(header: str | None) -> None:
    assert resolve_version(header) == LATEST


@pytest.mark.parametrize("header", ["2025-08-20", "2025-09-14", "2025-07-01", "2024-03-21"])
def test_resolve_version_pins_a25_for_dates_before_the_d25_changes(header: str) -> None:
    assert resolve_version(header) == V2025_08_20


@pytest.mark.parametrize("header", ["v2", "2025-13-01", "20250820", "2025-W34-3", "2025-08-20T00:00:00"])
def test_resolve_version_rejects_garbage_and_lists_accepted_versions(header: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        resolve_version(header)
    assert caught.value.kind == "request_invalid"
    assert "'latest'" in caught.value.message and "'2025-08-20'" in caught.value.message


# --- task_to_a25 -----------------------------------------------------------------------------


def test_task_to_a25_converts_the_reference_task() -> None:
    a25 = task_to_a25(d25_task())

    assert a25 == {
        "id": "task_0mh1x2y3abcdefgh",
        "object": "task",
        "kind": "video",
        "input": {
            "object": "source",
            "kind": "video",
            "status": "ready",
            "format": "mp4",
            "type": "video/mp4",
            "width": 1920,
            "height": 1080,
            "duration": 10.0,
            "filesize": 123,
            "codec": "h264",
            "url": "https://example.com/in.mp4",
        },
        "options": {"format": "mp4", "width": 640},
        "output": {
            "object": "source",
            "kind": "video",
            "status": "ready",
            "format": "mp4",
            "type": "video/mp4",
            "width": 640,
            "height": 360,
            "duration": 10.0,
            "filesize": 456,
            "codec": "h264",
            "url": "http://localhost:8080/files/out.mp4",
        },
        "status": "completed",
        "progress": 100,
        "error": None,
        "created_by": None,
        "created": "2025-01-01T00:03:45Z",
        "updated": "2025-01-01T00:03:50Z",
        "parent_id": None,
        "workflow": None,
        "results": {"url": "http://localhost:8080/files/out.mp4", "format": "mp4"},
    }


@pytest.mark.parametrize(
    ("d25", "a25"),
    [
        ("waiting", "pending"),
        ("queued", "pending"),
        ("validating", "processing"),
        ("processing", "processing"),
        ("finishing", "processing"),
        ("succeeded", "completed"),
        ("failed", "failed"),
        ("cancelled", "cancelled"),
    ],
)
def test_task_to_a25_maps_every_status(d25: str, a25: str) -> None:
    assert task_to_a25(d25_task(status=d25))["status"] == a25


def test_task_to_a25_new_task_has_url_input_and_no_output() -> None:
    task = d25_task(
        status="waiting",
        progress=None,
        inputs=[],
        outputs=[],
        started_at=None,
        finished_at=None,
        updated_at=1735689825,
    )

    a25 = task_to_a25(task)

    assert a25["status"] == "pending"
    assert a25["input"] == {"url": "https://example.com/in.mp4"}
    assert a25["output"] is None
    assert a25["results"] is None
    assert a25["progress"] is None
    assert a25["created"] == a25["updated"] == "2025-01-01T00:03:45Z"


def test_task_to_a25_failed_task_keeps_error_text() -> None:
    a25 = task_to_a25(d25_task(status="failed", outputs=[], error="The input is not a media file."))
    assert (a25["status"], a25["error"], a25["results"]) == ("failed", "The input is not a media file.", None)

    as_object = task_to_a25(
        d25_task(status="failed", error={"kind": "input_invalid", "message": "Bad input."})
    )
    assert as_object["error"] == "Bad input."


def test_task_to_a25_renames_summary_and_classes_intelligence_output() -> None:
    task = d25_task(
        kind="summary",
        options={},
        outputs=[{"kind": "source", "type": "application/json", "url": "http://localhost:8080/files/s.json"}],
    )

    a25 = task_to_a25(task)

    assert a25["kind"] == "description"
    assert a25["output"]["object"] == "intelligence"
    assert a25["output"]["kind"] == "description"
    assert a25["output"]["format"] == "json"


def test_task_to_a25_thumbnails_become_one_track_listing_every_url() -> None:
    frames = [
        {"kind": "source", "type": "image/jpeg", "width": 320, "height": 180, "url": f"http://h/f/{i}.jpg"}
        for i in range(3)
    ]

    output = task_to_a25(d25_task(kind="thumbnails", options={}, outputs=frames))["output"]

    assert (output["object"], output["kind"], output["format"]) == ("track", "thumbnails", "jpeg")
    assert output["url"] == "http://h/f/0.jpg"
    assert output["count"] == 3
    assert output["urls"] == ["http://h/f/0.jpg", "http://h/f/1.jpg", "http://h/f/2.jpg"]


def test_task_to_a25_puts_filename_folder_ref_on_the_output() -> None:
    output = task_to_a25(d25_task(filename="intro.mp4", folder="uploads/u1", ref="original"))["output"]
    assert (output["filename"], output["folder"], output["ref"]) == ("intro.mp4", "uploads/u1", "original")


def test_task_to_a25_keeps_conditions_results() -> None:
    results = {"passed": [{"prop": "duration", "value": 5}], "failed": [], "continue": True}
    a25 = task_to_a25(d25_task(kind="conditions", status="processing", outputs=[], results=results))
    assert a25["results"] == results


# --- request_from_a25 ------------------------------------------------------------------------


def test_request_from_a25_moves_flat_options_under_options() -> None:
    body = {
        "file_id": "file_abcdefgh1234",
        "kind": "image",
        "width": 320,
        "format": "png",
        "ref": "thumbnail",
    }

    assert request_from_a25(body) == {
        "file_id": "file_abcdefgh1234",
        "kind": "image",
        "ref": "thumbnail",
        "url": None,
        "options": {"width": 320, "format": "png"},
    }


def test_request_from_a25_leaves_a_d25_body_unchanged() -> None:
    body = {"url": "https://example.com/in.mp4", "kind": "video", "options": {"width": 640}}
    assert request_from_a25(body) == body


def test_request_from_a25_merges_flat_and_nested_and_keeps_task_fields() -> None:
    body = {
        "url": "https://example.com/in.mp4",
        "kind": "video",
        "options": {"width": 640, "format": "mp4"},
        "format": "mp4",
        "quality": "high",
        "filename": "intro.mp4",
        "folder": "uploads",
        "webhook_url": "https://hooks.example.com/x",
        "metadata": {"user": "u1"},
    }

    assert request_from_a25(body) == {
        "url": "https://example.com/in.mp4",
        "kind": "video",
        "options": {"width": 640, "format": "mp4", "quality": "high"},
        "filename": "intro.mp4",
        "folder": "uploads",
        "webhook_url": "https://hooks.example.com/x",
        "metadata": {"user": "u1"},
    }


def test_request_from_a25_renames_description_kind() -> None:
    assert request_from_a25({"url": "https://e.com/a.mp4", "kind": "description"})["kind"] == "summary"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (None, "JSON object"),
        ([{"kind": "video"}], "JSON object"),
        ({"kind": "video", "options": "width=640"}, "'options'"),
        ({"kind": "video", "width": 320, "options": {"width": 640}}, "'width'"),
    ],
)
def test_request_from_a25_rejects_malformed_bodies(body: Any, fragment: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        request_from_a25(body)
    assert fragment in caught.value.message


# --- page_window_a25 -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("page", "limit", "window"),
    [(None, None, (0, 20)), (1, 10, (0, 10)), (3, 10, (20, 10)), (2, None, (20, 20)), (1, 100, (0, 100))],
)
def test_page_window_a25(page: int | None, limit: int | None, window: tuple[int, int]) -> None:
    assert page_window_a25(page, limit) == window


@pytest.mark.parametrize(("page", "limit"), [(0, 10), (-1, 10), (1, 0), (1, 101)])
def test_page_window_a25_rejects_out_of_range(page: int, limit: int) -> None:
    with pytest.raises(InvalidRequest):
        page_window_a25(page, limit)


# --- the real SDK, offline -------------------------------------------------------------------


class FakeGateway:
    """Just enough of the gateway's A25 path to drive the SDK: every answer comes from
    :mod:`gateway.api.versions`, and every request is kept for the assertions."""

    def __init__(self, tasks: list[dict[str, Any]]) -> None:
        self.tasks = {task["id"]: task for task in tasks}
        self.requests: list[httpx.Request] = []
        self.created_bodies: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        assert resolve_version(request.headers.get("accept-version")) == V2025_08_20
        path = request.url.path
        if request.method == "POST" and path == "/tasks":
            body = request_from_a25(json.loads(request.content))
            self.created_bodies.append(body)
            task = d25_task(
                id="task_0mh1x2y3newtask0",
                kind=body["kind"],
                status="waiting",
                progress=None,
                options=body["options"],
                inputs=[],
                outputs=[],
                url=body["url"],
                started_at=None,
                finished_at=None,
                updated_at=1735689825,
            )
            return httpx.Response(201, json=task_to_a25(task))
        if request.method == "GET" and path == "/tasks":
            offset, limit = page_window_a25(
                int(request.url.params.get("page", 1)), int(request.url.params.get("limit", 20))
            )
            page = list(self.tasks.values())[offset : offset + limit]
            return httpx.Response(200, json=[task_to_a25(task) for task in page])
        if request.method == "GET" and path.startswith("/tasks/"):
            task_id = path.removeprefix("/tasks/")
            if task_id not in self.tasks:
                return httpx.Response(404, json={"kind": "task_not_found", "message": "No such task."})
            return httpx.Response(200, json=task_to_a25(self.tasks[task_id]))
        return httpx.Response(404, json={"kind": "not_found", "message": "No such route."})


@pytest.fixture
def gateway() -> FakeGateway:
    return FakeGateway([d25_task(), d25_task(id="task_0mh1x2y3second00", kind="audio", status="processing")])


@pytest.fixture
def client(gateway: FakeGateway) -> Ittybit:
    return Ittybit(
        base_url=BASE_URL, api_key=API_KEY, httpx_client=httpx.Client(transport=httpx.MockTransport(gateway))
    )


def test_sdk_get_parses_the_a25_task(client: Ittybit, gateway: FakeGateway) -> None:
    task = client.tasks.get("task_0mh1x2y3abcdefgh")

    assert (task.id, task.object, task.kind, task.status, task.progress) == (
        "task_0mh1x2y3abcdefgh",
        "task",
        "video",
        "completed",
        100,
    )
    assert task.created == datetime(2025, 1, 1, 0, 3, 45, tzinfo=UTC)
    assert task.updated == datetime(2025, 1, 1, 0, 3, 50, tzinfo=UTC)
    assert task.output is not None and task.output["url"] == "http://localhost:8080/files/out.mp4"
    assert task.input is not None and task.input["width"] == 1920
    assert task.options == {"format": "mp4", "width": 640}
    sent = gateway.requests[0]
    assert (sent.method, sent.url.path) == ("GET", "/tasks/task_0mh1x2y3abcdefgh")
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"


def test_sdk_list_parses_a_bare_array_and_sends_page_params(client: Ittybit, gateway: FakeGateway) -> None:
    tasks = client.tasks.list(page=1, limit=10)

    assert [(task.id, task.kind, task.status) for task in tasks] == [
        ("task_0mh1x2y3abcdefgh", "video", "completed"),
        ("task_0mh1x2y3second00", "audio", "processing"),
    ]
    assert dict(gateway.requests[0].url.params) == {"page": "1", "limit": "10"}
    assert client.tasks.list(page=2, limit=10) == []


def test_sdk_create_body_normalises_to_d25(client: Ittybit, gateway: FakeGateway) -> None:
    task = client.tasks.create(
        request={"url": "https://example.com/in.mp4", "kind": "video", "width": 640, "format": "mp4"}
    )

    assert gateway.created_bodies == [
        {"url": "https://example.com/in.mp4", "kind": "video", "options": {"width": 640, "format": "mp4"}}
    ]
    assert (task.id, task.status, task.kind, task.output) == (
        "task_0mh1x2y3newtask0",
        "pending",
        "video",
        None,
    )
    assert task.input == {"url": "https://example.com/in.mp4"}
    assert gateway.requests[0].headers["content-type"] == "application/json"


def test_sdk_error_exposes_status_and_body(client: Ittybit) -> None:
    with pytest.raises(ApiError) as caught:
        client.tasks.get("task_doesnotexist00")

    assert caught.value.status_code == 404
    assert caught.value.body == {"kind": "task_not_found", "message": "No such task."}


def test_sdk_does_not_unwrap_envelopes() -> None:
    """Pins why A25 responses are bare: given the older ``{meta, data, links}`` envelope, the
    SDK neither raises nor unwraps, it hands the caller empty fields or the raw dict."""
    envelope = {"meta": {"type": "object"}, "data": task_to_a25(d25_task()), "links": {}}
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=envelope))
    client = Ittybit(base_url=BASE_URL, api_key=API_KEY, httpx_client=httpx.Client(transport=transport))

    assert client.tasks.get("task_0mh1x2y3abcdefgh").id is None
    assert client.tasks.list() == envelope


async def test_async_sdk_get(gateway: FakeGateway) -> None:
    transport = httpx.MockTransport(gateway)
    client = AsyncIttybit(
        base_url=BASE_URL, api_key=API_KEY, httpx_client=httpx.AsyncClient(transport=transport)
    )

    task = await client.tasks.get("task_0mh1x2y3abcdefgh")

    assert (task.id, task.status) == ("task_0mh1x2y3abcdefgh", "completed")
