"""Error responses of the task API: exact ``{kind, message}`` bodies with the right HTTP codes."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from stack import Stack
from tests.conftest import create, run_task
from tests.support import Corpus, Origin
from tests.support.errors import assert_error

MEDIA_KINDS = ("video", "image", "audio")


@pytest.fixture(scope="module")
def image_url(origin: Origin, corpus: Corpus) -> str:
    """A tiny input: tasks that must run finish in well under a second."""
    return origin.url(corpus.png_small.name)


# --- request body --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content", [b'{"kind": "image", "url": ', b"kind=image"], ids=["truncated", "form-like"]
)
def test_body_that_is_not_json_is_request_invalid(api: httpx.Client, content: bytes) -> None:
    """A body that does not parse as JSON is a 400 saying so, never a 422 or 500."""
    response = api.post("/tasks", content=content, headers={"Content-Type": "application/json"})
    assert_error(response, 400, "request_invalid", "JSON")


def test_body_that_is_not_utf8_is_request_invalid(api: httpx.Client) -> None:
    response = api.post("/tasks", content=b"\xff\xfe\x00", headers={"Content-Type": "application/json"})
    assert_error(response, 400, "request_invalid")


@pytest.mark.parametrize("body", [[], "image", 42, None], ids=["array", "string", "number", "null"])
def test_body_that_is_not_an_object_is_request_invalid(api: httpx.Client, body: Any) -> None:
    assert_error(api.post("/tasks", json=body), 400, "request_invalid")


def test_missing_kind_names_the_field(api: httpx.Client, image_url: str) -> None:
    message = assert_error(api.post("/tasks", json={"url": image_url, "options": {}}), 400, "request_invalid")
    assert message == "The 'kind' field is required."


def test_unknown_kind_lists_the_allowed_kinds(api: httpx.Client, image_url: str) -> None:
    response = api.post("/tasks", json={"url": image_url, "kind": "hologram"})
    assert_error(response, 400, "request_invalid", "hologram", *MEDIA_KINDS)


def test_kind_of_the_wrong_type_is_request_invalid(api: httpx.Client, image_url: str) -> None:
    assert_error(api.post("/tasks", json={"url": image_url, "kind": 5}), 400, "request_invalid", "kind")


# --- options -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", MEDIA_KINDS)
def test_unknown_option_names_it_and_the_allowed_options(
    api: httpx.Client, image_url: str, kind: str
) -> None:
    response = api.post("/tasks", json={"url": image_url, "kind": kind, "options": {"colour": "red"}})
    # Every media kind has a format option, so the allowed list must name it.
    assert_error(response, 400, "request_invalid", "options.colour", "format")


@pytest.mark.parametrize("kind", ["video", "image"])
@pytest.mark.parametrize("width", [-5, 0, "wide", 1.5, True])
def test_bad_width_names_options_width(api: httpx.Client, image_url: str, kind: str, width: Any) -> None:
    response = api.post("/tasks", json={"url": image_url, "kind": kind, "options": {"width": width}})
    assert_error(response, 400, "request_invalid", "options.width")


@pytest.mark.parametrize(
    ("kind", "allowed"),
    [("video", ("mp4", "webm", "mov")), ("image", ("jpeg", "png", "webp", "avif"))],
)
def test_unsupported_format_lists_the_allowed_values(
    api: httpx.Client, image_url: str, kind: str, allowed: tuple[str, ...]
) -> None:
    response = api.post("/tasks", json={"url": image_url, "kind": kind, "options": {"format": "bmp"}})
    assert_error(response, 400, "request_invalid", "options.format", "bmp", *allowed)


def test_impossible_codec_and_format_pair_is_rejected(api: httpx.Client, image_url: str) -> None:
    response = api.post(
        "/tasks", json={"url": image_url, "kind": "video", "options": {"format": "webm", "codec": "h264"}}
    )
    assert_error(response, 400, "request_invalid", "h264", "webm")


def test_options_that_are_not_an_object_are_rejected(api: httpx.Client, image_url: str) -> None:
    response = api.post("/tasks", json={"url": image_url, "kind": "image", "options": [1, 2]})
    assert_error(response, 400, "request_invalid", "options")


def test_rejected_requests_create_no_task(api: httpx.Client, image_url: str) -> None:
    """A 400 must not leave a task behind (validation happens before the record is stored)."""
    before = api.get("/tasks", params={"limit": 1}).json()
    api.post("/tasks", json={"url": image_url, "kind": "image", "options": {"width": -5}})
    api.post("/tasks", json={"url": "ftp://example.com/a.png", "kind": "image"})
    after = api.get("/tasks", params={"limit": 1}).json()
    assert [t["id"] for t in after] == [t["id"] for t in before]


# --- url -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [{}, {"url": None}, {"url": ""}], ids=["absent", "null", "empty"])
def test_missing_url_is_url_required(api: httpx.Client, body: dict[str, Any]) -> None:
    response = api.post("/tasks", json={"kind": "image", **body})
    assert_error(response, 400, "url_required", "url")


@pytest.mark.parametrize(
    "url", ["ftp://example.com/a.png", "file:///etc/passwd", "example.com/a.png", "http://"]
)
def test_url_that_is_not_http_is_rejected(api: httpx.Client, url: str) -> None:
    assert_error(api.post("/tasks", json={"kind": "image", "url": url}), 400, "request_invalid")


# --- authentication ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/tasks"), ("POST", "/tasks"), ("GET", "/tasks/task_doesnotexist0000"), ("POST", "/signatures")],
)
def test_missing_authorization_is_token_missing(stack: Stack, method: str, path: str) -> None:
    response = httpx.request(method, stack.base_url + path, json={"kind": "image"}, timeout=10)
    assert_error(response, 401, "token_missing")


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Token abc"])
def test_malformed_authorization_is_token_missing(stack: Stack, header: str) -> None:
    response = httpx.get(stack.base_url + "/tasks", headers={"Authorization": header}, timeout=10)
    assert_error(response, 401, "token_missing")


def test_wrong_key_is_token_invalid(stack: Stack) -> None:
    headers = {"Authorization": f"Bearer {stack.config.api_key}x"}
    response = httpx.get(stack.base_url + "/tasks", headers=headers, timeout=10)
    message = assert_error(response, 401, "token_invalid")
    assert stack.config.api_key not in message


def test_authentication_is_checked_before_the_body_is_parsed(stack: Stack) -> None:
    """An unauthenticated caller gets 401 whatever it sends, also when the body is not JSON."""
    response = httpx.post(
        stack.base_url + "/tasks",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert_error(response, 401, "token_missing")


# --- not found, other projects -------------------------------------------------------------------


def test_unknown_task_is_task_not_found(api: httpx.Client) -> None:
    response = api.get("/tasks/task_doesnotexist0000")
    assert_error(response, 404, "task_not_found", "task_doesnotexist0000")


@pytest.mark.parametrize("task_id", ["*", ">", "task.x", "task x"])
def test_malformed_task_id_is_task_not_found(api: httpx.Client, task_id: str) -> None:
    """Ids that cannot exist are a 404 naming the id, never a 500 (NATS rejects such keys)."""
    assert_error(api.get(f"/tasks/{task_id}"), 404, "task_not_found", task_id)
    assert_error(api.post(f"/tasks/{task_id}/cancel"), 404, "task_not_found", task_id)


def test_other_projects_task_is_not_found(api: httpx.Client, other_api: httpx.Client, image_url: str) -> None:
    task = create(api, "image", image_url, width=16)
    assert_error(other_api.get(f"/tasks/{task['id']}"), 404, "task_not_found")
    assert_error(other_api.post(f"/tasks/{task['id']}/cancel"), 404, "task_not_found")
    assert_error(other_api.get(f"/tasks/{task['id']}/events"), 404, "task_not_found")
    # The other project's cancel did not touch it.
    mine = api.get(f"/tasks/{task['id']}")
    assert mine.status_code == 200 and mine.json()["status"] != "cancelled", mine.text


# --- limits, cancel ------------------------------------------------------


def test_body_over_one_mib_is_413(api: httpx.Client, image_url: str) -> None:
    body = {"kind": "image", "url": image_url, "metadata": {"blob": "x" * (1024 * 1024 + 1)}}
    assert_error(api.post("/tasks", json=body), 413, "request_too_large")


def test_body_just_within_the_limit_is_not_a_500(api: httpx.Client, image_url: str) -> None:
    """A body the size limit lets through is either accepted or refused with a clear 4xx."""
    base = json.dumps({"kind": "image", "url": image_url, "metadata": {"blob": ""}}).encode()
    body = base[:-3] + b"x" * (1024 * 1024 - len(base)) + b'"}}'
    assert len(body) == 1024 * 1024
    response = api.post("/tasks", content=body, headers={"Content-Type": "application/json"})
    if response.status_code != 201:
        assert response.status_code in (400, 413), response.text
        assert set(response.json()) == {"kind", "message"}


def test_chunked_body_over_one_mib_is_413(api: httpx.Client, image_url: str) -> None:
    """The size limit also holds when the client sends no Content-Length (chunked transfer)."""
    head = json.dumps({"kind": "image", "url": image_url, "metadata": {"blob": ""}})[:-3].encode()
    chunks = [head, b"x" * (1024 * 1024), b'"}}']
    response = api.post("/tasks", content=iter(chunks), headers={"Content-Type": "application/json"})
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "request_too_large")


def test_cancel_of_a_finished_task_is_409(api: httpx.Client, image_url: str) -> None:
    task = run_task(api, "image", image_url, width=16)
    assert task["status"] == "succeeded", task
    assert_error(api.post(f"/tasks/{task['id']}/cancel"), 409, "task_terminal", task["id"])
    again = api.get(f"/tasks/{task['id']}").json()
    assert again["status"] == "succeeded" and again["finished_at"] == task["finished_at"]


def test_cancel_of_an_unknown_task_is_404(api: httpx.Client) -> None:
    response = api.post("/tasks/task_doesnotexist0000/cancel")
    assert_error(response, 404, "task_not_found", "task_doesnotexist0000")


# --- anything else the router answers ------------------------------------------------------------


def test_unknown_route_and_method_use_the_error_body(api: httpx.Client) -> None:
    assert_error(api.get("/no-such-route"), 404, "not_found")
    assert_error(api.delete("/tasks"), 405, "method_not_allowed")


@pytest.mark.parametrize("query", ["limit=abc", "order=sideways", "limit=0"])
def test_bad_query_parameters_are_400_not_422(api: httpx.Client, query: str) -> None:
    assert_error(api.get(f"/tasks?{query}"), 400, "request_invalid")
