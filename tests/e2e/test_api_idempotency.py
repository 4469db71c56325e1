"""``Idempotency-Key`` on ``POST /tasks`` and resumable SSE, through the gateway of the real stack.

Stripe's semantics: the same key and body return the original task (``Idempotent-Replayed: true``),
the same key with another body is 422, concurrent requests with one key make one task; keys are
per project. Faults (services and NATS going away) are in ``tests/faults``.
"""

from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.conftest import wait_done
from tests.support import Corpus, Origin
from tests.support.sse import read_sse


def _post(api: httpx.Client, body: dict[str, Any], key: str | None) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return api.post("/tasks", json=body, headers=headers)


def _body(origin: Origin, corpus: Corpus, width: int = 32) -> dict[str, Any]:
    return {"kind": "image", "url": origin.url(corpus.png_small.name), "options": {"width": width}}


def test_a_repeat_with_the_key_returns_the_original_task(
    api: httpx.Client, origin: Origin, corpus: Corpus
) -> None:
    key = secrets.token_hex(8)
    first = _post(api, _body(origin, corpus), key)
    again = _post(api, _body(origin, corpus), key)
    assert (first.status_code, again.status_code) == (201, 201)
    assert "Idempotent-Replayed" not in first.headers and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert _post(api, _body(origin, corpus), None).json()["id"] != first.json()["id"], "no key: a new task"


def test_the_key_with_another_body_is_422(api: httpx.Client, origin: Origin, corpus: Corpus) -> None:
    key = secrets.token_hex(8)
    assert _post(api, _body(origin, corpus), key).status_code == 201
    refused = _post(api, _body(origin, corpus, width=16), key)
    assert refused.status_code == 422
    assert refused.json()["kind"] == "idempotency_key_reused"


def test_concurrent_requests_with_one_key_make_one_task(
    api: httpx.Client, origin: Origin, corpus: Corpus
) -> None:
    key = secrets.token_hex(8)
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: _post(api, _body(origin, corpus), key), range(8)))
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 7
    listed = api.get("/tasks", params={"limit": 100}).json()
    assert sum(t["id"] == responses[0].json()["id"] for t in listed) == 1


def test_keys_are_per_project(
    api: httpx.Client, other_api: httpx.Client, origin: Origin, corpus: Corpus
) -> None:
    key = secrets.token_hex(8)
    ours = _post(api, _body(origin, corpus), key).json()
    theirs = _post(other_api, _body(origin, corpus), key)
    assert theirs.status_code == 201 and "Idempotent-Replayed" not in theirs.headers
    assert theirs.json()["id"] != ours["id"]


def test_a_malformed_key_is_400(api: httpx.Client, origin: Origin, corpus: Corpus) -> None:
    response = _post(api, _body(origin, corpus), "k" * 256)
    assert response.status_code == 400 and "Idempotency-Key" in response.json()["message"]


def test_sse_ids_are_revisions_and_last_event_id_resumes(
    api: httpx.Client, origin: Origin, corpus: Corpus
) -> None:
    task = _post(api, _body(origin, corpus), None).json()
    wait_done(api, task["id"])
    path = f"/tasks/{task['id']}/events"
    events = read_sse(api, path)
    revisions = [int(e.id or 0) for e in events]
    assert events[0].topic == "task.created" and events[-1].topic == "task.succeeded"
    assert revisions == sorted(set(revisions)), "ids are increasing record revisions"
    resumed = read_sse(api, path, headers={"Last-Event-ID": str(revisions[0])})
    assert resumed and all(int(e.id or 0) > revisions[0] for e in resumed)
    assert resumed[-1].data["status"] == "succeeded", "the current state comes first on a resume"
    assert read_sse(api, path, headers={"Last-Event-ID": str(revisions[-1])}) == [], "nothing newer"
