"""Hostile requests at the real gateway: each is refused with a 400 ``{kind, message}`` naming what
is wrong, nothing is stored, and the project's reads keep working afterwards."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import nats
import pytest

from stack import Stack
from tests.conftest import wait_done
from tests.support import Corpus, Origin
from tests.support.errors import assert_error

A25 = {"Accept-Version": "2025-08-20"}


@pytest.fixture(scope="module")
def image_url(origin: Origin, corpus: Corpus) -> str:
    return origin.url(corpus.png_small.name)


def newest_ids(api: httpx.Client) -> list[str]:
    response = api.get("/tasks", params={"limit": 100})
    assert response.status_code == 200, response.text
    return [task["id"] for task in response.json()]


def post_raw(api: httpx.Client, text: str) -> httpx.Response:
    """POST a body exactly as written (JSON escapes such as ``\\ud800`` reach the server intact)."""
    return api.post("/tasks", content=text.encode(), headers={"Content-Type": "application/json"})


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


# --- bodies that cannot be stored or rendered -----------------------------------------------------


@pytest.mark.parametrize(
    ("fragment", "field"),
    [
        ('"metadata": {"a": Infinity}', "metadata.a"),
        ('"metadata": {"a": {"b": [1, NaN]}}', "metadata.a.b[1]"),
        ('"metadata": {"a": -Infinity}', "metadata.a"),
        ('"metadata": {"a": 1e999}', "metadata.a"),
        ('"options": {"width": Infinity}', "options.width"),
        ('"metadata": {"a": "\\ud800"}', "metadata.a"),
        ('"metadata": {"\\udfff": 1}', "metadata"),
        ('"filename": "x\\ud800.png"', "filename"),
        ('"url": "https://example.com/\\ud800"', "url"),
    ],
)
def test_values_json_cannot_hold_are_refused_and_nothing_is_stored(
    api: httpx.Client, image_url: str, fragment: str, field: str
) -> None:
    before = newest_ids(api)
    url = "" if '"url"' in fragment else f'"url": "{image_url}", '
    body = '{"kind": "image", ' + url + fragment + "}"
    assert_error(post_raw(api, body), 400, "request_invalid", f"'{field}'")
    assert newest_ids(api) == before
    assert api.get("/tasks").status_code == 200


@pytest.mark.parametrize("depth", [6, 50, 200])
def test_metadata_deeper_than_the_limit_is_refused(api: httpx.Client, image_url: str, depth: int) -> None:
    before = newest_ids(api)
    body = json.dumps({"kind": "image", "url": image_url, "metadata": nested(depth)})
    assert_error(post_raw(api, body), 400, "request_invalid", "metadata", "nested deeper")
    assert newest_ids(api) == before


@pytest.mark.parametrize("depth", [5_000, 150_000])
def test_a_body_nested_past_the_parser_is_refused(api: httpx.Client, image_url: str, depth: int) -> None:
    metadata = '{"a":' * depth + "1" + "}" * depth
    body = f'{{"kind": "image", "url": "{image_url}", "metadata": {metadata}}}'
    assert_error(post_raw(api, body), 400, "request_invalid", "nested deeper")


def test_a_number_too_long_to_parse_is_refused(api: httpx.Client, image_url: str) -> None:
    body = f'{{"kind": "image", "url": "{image_url}", "metadata": {{"n": {"9" * 5000}}}}}'
    assert_error(post_raw(api, body), 400, "request_invalid", "number")


def test_metadata_at_the_limits_is_stored_and_read_back(api: httpx.Client, image_url: str) -> None:
    metadata = {"deep": nested(4), "text": "é" * 1000, "n": 1.5}
    response = api.post("/tasks", json={"kind": "image", "url": image_url, "metadata": metadata})
    assert response.status_code == 201, response.text
    assert wait_done(api, response.json()["id"])["metadata"] == metadata


def test_metadata_over_the_size_limit_is_refused(api: httpx.Client, image_url: str) -> None:
    before = newest_ids(api)
    response = api.post("/tasks", json={"kind": "image", "url": image_url, "metadata": {"a": "x" * 20_000}})
    assert_error(response, 400, "request_invalid", "'metadata'", "16384 bytes")
    assert newest_ids(api) == before


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("filename", "a" * 300 + ".png", "'filename' is 304 characters"),
        ("folder", "f" * 5000, "'folder' is 5000 characters"),
        ("folder", "/".join(["s" * 201] * 2), "too long"),
    ],
)
def test_names_too_long_for_storage_keys_are_refused_at_create(
    api: httpx.Client, image_url: str, field: str, value: str, fragment: str
) -> None:
    before = newest_ids(api)
    response = api.post("/tasks", json={"kind": "image", "url": image_url, field: value})
    assert_error(response, 400, "request_invalid", fragment)
    assert newest_ids(api) == before


def test_names_at_the_length_limits_work(api: httpx.Client, image_url: str) -> None:
    body = {
        "kind": "image",
        "url": image_url,
        "filename": "n" * 196 + ".png",
        "folder": "/".join(["d" * 200] * 2),
    }
    response = api.post("/tasks", json=body)
    assert response.status_code == 201, response.text
    task = wait_done(api, response.json()["id"])
    assert task["status"] == "succeeded", task


# --- query parameters and headers, in every version ------------------------------------------------


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        ("limit=" + "9" * 29, {}),
        ("limit=-1", {}),
        ("limit=" + "9" * 5000, {}),
        ("page=1000000000000", A25),
        ("page=0", A25),
        ("page=2&limit=" + "9" * 20, A25),
        ("after=" + "t" * 100, {}),
    ],
)
def test_query_integers_out_of_range_are_400(api: httpx.Client, query: str, headers: dict[str, str]) -> None:
    assert_error(api.get(f"/tasks?{query}", headers=headers), 400, "request_invalid")


@pytest.mark.parametrize("last_event_id", ["9" * 30, "18446744073709551616", "abc", "²"])
def test_a_last_event_id_that_no_stream_sent_is_400(
    api: httpx.Client, image_url: str, last_event_id: str
) -> None:
    task = api.post("/tasks", json={"kind": "image", "url": image_url}).json()
    response = api.get(
        f"/tasks/{task['id']}/events", headers={b"Last-Event-ID": last_event_id.encode("latin-1")}
    )
    assert_error(response, 400, "request_invalid", "Last-Event-ID")


# --- event streams ---------------------------------------------------------------------------------


async def _nats(stack: Stack, action: str, subject: str = "") -> int:
    client = await nats.connect(stack.nats_url)
    try:
        js = client.jetstream()
        if action == "purge":
            await js.purge_stream("EVENTS", subject=subject)
            return 0
        info = await js.stream_info("EVENTS")
        return int(info.state.consumer_count)
    finally:
        await client.close()


@pytest.fixture
def stuck_task(api: httpx.Client, origin: Origin, corpus: Corpus) -> Iterator[dict[str, Any]]:
    """A task that stays in its fetch for minutes (its input trickles in), cancelled afterwards."""
    url = origin.url(f"slow/{corpus.clip_av.name}") + "?chunk=64&delay=2"
    task = api.post("/tasks", json={"kind": "video", "url": url}).json()
    deadline = time.monotonic() + 30
    while (task := api.get(f"/tasks/{task['id']}").json())["status"] != "validating":
        assert time.monotonic() < deadline, task
        time.sleep(0.1)
    yield task  # and no further change until it is cancelled
    api.post(f"/tasks/{task['id']}/cancel")


def first_event(api: httpx.Client, task_id: str, timeout: float) -> tuple[float, str]:
    """Seconds until the stream's first event, and that event's block."""
    started = time.monotonic()
    with api.stream("GET", f"/tasks/{task_id}/events", timeout=timeout) as response:
        assert response.status_code == 200
        block: list[str] = []
        for line in response.iter_lines():
            if line == "" and block:
                return time.monotonic() - started, "\n".join(block)
            if line and not line.startswith(":"):
                block.append(line)
    raise AssertionError("the stream ended without an event")


def test_a_stream_of_a_task_without_events_opens_at_once_with_its_state(
    api: httpx.Client, stack: Stack, stuck_task: dict[str, Any]
) -> None:
    asyncio.run(_nats(stack, "purge", f"tasks.events.{stuck_task['id']}"))
    elapsed, block = first_event(api, stuck_task["id"], timeout=10)
    assert elapsed < 1.5, f"the first event took {elapsed:.1f} s"
    data = json.loads(block.split("data: ", 1)[1])
    assert data["id"] == stuck_task["id"] and data["status"] not in ("succeeded", "failed", "cancelled")


def test_dropped_streams_release_their_consumers(
    api: httpx.Client, stack: Stack, stuck_task: dict[str, Any]
) -> None:
    """The case that used to leak: streams of a task with no events, so nothing reaches the client."""
    asyncio.run(_nats(stack, "purge", f"tasks.events.{stuck_task['id']}"))
    baseline = asyncio.run(_nats(stack, "count"))
    for _ in range(100):
        first_event(api, stuck_task["id"], timeout=10)  # read one event, then hang up
    deadline = time.monotonic() + 30
    while (count := asyncio.run(_nats(stack, "count"))) > baseline and time.monotonic() < deadline:
        time.sleep(0.5)
    assert count <= baseline, f"{count - baseline} consumers left behind by closed streams"
