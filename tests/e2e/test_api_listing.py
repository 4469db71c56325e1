"""``GET /tasks``: bare arrays, cursor pagination headers, ordering, cursors and filters (reference §4).

Other test modules share the stack, so every expectation is pinned to this module's own batch of
tasks with cursors: ``floor`` sorts before the batch, ``ceiling`` after it (ids sort by creation
time), and the module creates no task after the batch except the few ``extra`` ones.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from taskkit import ids
from tests.conftest import create, wait_done
from tests.support import Corpus, Origin

BATCH = 21  # one more than the default page size
_LINK = re.compile(r'^<([^>]+)>;\s*rel="next"$')


@dataclass(frozen=True)
class Batch:
    tasks: list[dict[str, Any]]  # creation order
    floor: str  # a cursor older than every task of the batch
    ceiling: str  # a cursor newer than every task of the batch

    @property
    def ids(self) -> list[str]:
        return [t["id"] for t in self.tasks]


def _cursor() -> str:
    time.sleep(0.005)
    cursor = ids.task_id()
    time.sleep(0.005)
    return cursor


@pytest.fixture(scope="module")
def batch(api: httpx.Client, origin: Origin, corpus: Corpus) -> Batch:
    floor = _cursor()
    url = origin.url(corpus.png_small.name)
    tasks = [create(api, "image", url, width=8 + i) for i in range(BATCH)]
    return Batch(tasks=tasks, floor=floor, ceiling=_cursor())


@pytest.fixture(scope="module")
def finished(api: httpx.Client, batch: Batch) -> Batch:
    """The batch once every task of it reached a terminal status."""
    for task in batch.tasks:
        assert wait_done(api, task["id"])["status"] == "succeeded"
    return batch


def listing(client: httpx.Client, **params: Any) -> tuple[list[dict[str, Any]], httpx.Headers]:
    response = client.get("/tasks", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, list), body  # bare JSON array, no envelope
    return body, response.headers


def id_list(tasks: list[dict[str, Any]]) -> list[str]:
    return [t["id"] for t in tasks]


def next_link(headers: httpx.Headers) -> str | None:
    link = headers.get("link")
    if link is None:
        return None
    match = _LINK.match(link)
    assert match, link
    return match.group(1)


def assert_bad_request(response: httpx.Response, *fragments: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert set(body) == {"kind", "message"} and body["kind"] == "request_invalid", body
    for fragment in fragments:
        assert fragment in body["message"], body


# --- shape, limit, headers -----------------------------------------------------------------------


def test_list_is_a_bare_array_of_tasks_with_default_limit_20(api: httpx.Client, batch: Batch) -> None:
    tasks, headers = listing(api)
    assert len(tasks) == 20
    assert headers["Limit"] == "20" and headers["Has-More"] == "true"
    for task in tasks:
        assert task["object"] == "task" and task["id"].startswith("task_")
        assert {"status", "kind", "run_id", "created_at", "outputs"} <= task.keys()


def test_default_page_is_the_newest_tasks_first(api: httpx.Client, batch: Batch) -> None:
    tasks, headers = listing(api, after=batch.ceiling)
    assert id_list(tasks) == list(reversed(batch.ids))[:20]
    assert headers["Has-More"] == "true"
    created = [t["created_at"] for t in tasks]
    assert created == sorted(created, reverse=True)


@pytest.mark.parametrize("limit", [1, 7, 100])
def test_limit_sets_the_page_size(api: httpx.Client, batch: Batch, limit: int) -> None:
    tasks, headers = listing(api, limit=limit, order="asc", after=batch.floor)
    assert headers["Limit"] == str(limit)
    if limit <= BATCH:
        assert id_list(tasks) == batch.ids[:limit]
        assert headers["Has-More"] == "true"
    else:
        assert id_list(tasks)[:BATCH] == batch.ids
        assert len(tasks) <= limit


@pytest.mark.parametrize("limit", ["0", "101", "-1", "abc", "1.5"])
def test_limit_out_of_range_is_400(api: httpx.Client, batch: Batch, limit: str) -> None:
    assert_bad_request(api.get("/tasks", params={"limit": limit}), "limit")


def test_link_next_gives_the_following_page_without_overlap(api: httpx.Client, batch: Batch) -> None:
    seen: list[str] = []
    page, headers = listing(api, limit=5, after=batch.ceiling)
    for _ in range(3):
        assert headers["Has-More"] == "true" and headers["Limit"] == "5"
        seen += id_list(page)
        link = next_link(headers)
        assert link is not None, dict(headers)
        assert "limit=5" in link and f"after={page[-1]['id']}" in link
        response = api.get(link)  # an absolute URL that works as given
        assert response.status_code == 200, response.text
        page, headers = response.json(), response.headers
    seen += id_list(page)
    assert len(seen) == len(set(seen)) == 20
    assert seen == list(reversed(batch.ids))[:20]


def test_link_next_keeps_order_and_filters(api: httpx.Client, batch: Batch) -> None:
    _, headers = listing(api, limit=3, order="asc", kind="image", after=batch.floor)
    link = next_link(headers)
    assert link is not None
    response = api.get(link)
    assert id_list(response.json()) == batch.ids[3:6]
    assert "order=asc" in link and "kind=image" in link


def test_last_page_has_no_next_link(api: httpx.Client, batch: Batch) -> None:
    tasks, headers = listing(api, order="asc", after=batch.ids[-4], limit=50)
    assert batch.ids[-3:] == id_list(tasks)[:3]
    assert headers["Has-More"] == "false"
    assert "link" not in headers


# --- order and cursors ---------------------------------------------------------------------------


def test_order_asc_and_desc_sort_by_creation(api: httpx.Client, batch: Batch) -> None:
    asc, _ = listing(api, order="asc", after=batch.floor, limit=BATCH)
    assert id_list(asc) == batch.ids
    desc, _ = listing(api, order="desc", after=batch.ceiling, limit=BATCH)
    assert id_list(desc) == list(reversed(batch.ids))
    assert batch.ids == sorted(batch.ids)  # ids themselves sort by creation time


@pytest.mark.parametrize(
    ("order", "cursor", "expected"),
    [
        ("desc", "after", [9, 8, 7]),
        ("asc", "after", [11, 12, 13]),
        ("desc", "before", [13, 12, 11]),
        ("asc", "before", [7, 8, 9]),
    ],
)
def test_after_and_before_cursors(
    api: httpx.Client, batch: Batch, order: str, cursor: str, expected: list[int]
) -> None:
    """``after`` is the page following the cursor in the listing order, ``before`` the one preceding it."""
    tasks, headers = listing(api, order=order, limit=3, **{cursor: batch.ids[10]})
    assert id_list(tasks) == [batch.ids[i] for i in expected]
    assert headers["Has-More"] == "true"


def test_after_and_before_together_is_400(api: httpx.Client, batch: Batch) -> None:
    assert_bad_request(api.get("/tasks", params={"after": batch.ids[2], "before": batch.ids[5]}))


@pytest.mark.parametrize("order", ["sideways", "ASCENDING", ""])
def test_bad_order_is_400(api: httpx.Client, batch: Batch, order: str) -> None:
    assert_bad_request(api.get("/tasks", params={"order": order}), "order")


# --- filters -------------------------------------------------------------------------------------


def test_run_id_filter_selects_one_run(api: httpx.Client, batch: Batch) -> None:
    run_ids = {t["run_id"] for t in batch.tasks}
    assert len(run_ids) == BATCH  # POST /tasks creates a run per task
    target = batch.tasks[4]
    tasks, headers = listing(api, run_id=target["run_id"])
    assert id_list(tasks) == [target["id"]]
    assert headers["Has-More"] == "false" and "link" not in headers
    none, _ = listing(api, run_id="run_doesnotexist0000")
    assert none == []


def test_kind_filter(api: httpx.Client, origin: Origin, finished: Batch) -> None:
    audio = create(api, "audio", origin.url("missing"))  # fails fast at fetch; cheap
    only_audio, _ = listing(api, kind="audio", limit=100)
    assert audio["id"] in id_list(only_audio)
    assert all(t["kind"] == "audio" for t in only_audio)
    assert not set(finished.ids) & set(id_list(only_audio))
    images, _ = listing(api, kind="image", order="asc", after=finished.floor, limit=100)
    assert id_list(images)[:BATCH] == finished.ids
    assert audio["id"] not in id_list(images) and all(t["kind"] == "image" for t in images)
    assert wait_done(api, audio["id"])["status"] == "failed"


def test_kind_filter_rejects_unknown_kinds(api: httpx.Client) -> None:
    assert_bad_request(api.get("/tasks", params={"kind": "hologram"}), "kind")


def test_status_filter(api: httpx.Client, origin: Origin, corpus: Corpus, finished: Batch) -> None:
    slow = create(api, "image", origin.url(f"slow/{corpus.png_small.name}?chunk=16&delay=0.5"))
    cancelled = api.post(f"/tasks/{slow['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled", cancelled.text

    done, _ = listing(api, status="succeeded", order="asc", after=finished.floor, limit=100)
    assert set(finished.ids) <= set(id_list(done))
    assert slow["id"] not in id_list(done)
    assert all(t["status"] == "succeeded" for t in done)

    gone, _ = listing(api, status="cancelled", order="asc", after=finished.floor)
    assert slow["id"] in id_list(gone)
    assert all(t["status"] == "cancelled" for t in gone)
    assert not set(finished.ids) & set(id_list(gone))

    both, _ = listing(api, status="cancelled", kind="image", run_id=slow["run_id"])
    assert id_list(both) == [slow["id"]]
    neither, _ = listing(api, status="succeeded", run_id=slow["run_id"])
    assert neither == []


@pytest.mark.parametrize("value", ["done", "completed", "SUCCEEDED", ""])
def test_bad_status_filter_is_400_naming_the_statuses(api: httpx.Client, value: str) -> None:
    assert_bad_request(api.get("/tasks", params={"status": value}), "status", "succeeded", "waiting")


# --- projects ------------------------------------------------------------------------------------


def test_other_project_sees_none_of_these_tasks(other_api: httpx.Client, batch: Batch) -> None:
    theirs, headers = listing(other_api, limit=100)
    assert not set(batch.ids) & set(id_list(theirs))
    assert headers["Limit"] == "100"
    around, _ = listing(other_api, order="asc", after=batch.floor, limit=100)
    assert not set(batch.ids) & set(id_list(around))
    by_run, _ = listing(other_api, run_id=batch.tasks[0]["run_id"])
    assert by_run == []
