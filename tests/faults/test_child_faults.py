"""A parent task whose worker dies mid-task: redelivered, it finds its child instead of making a
second one (the child's create is idempotent on the parent and step), and finishes.

Each test speaks a clip no earlier test transcribed (``unseen_copy``): a cached transcript would
answer the child at once, and the fault would land after the child had finished."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from stack import Stack
from tests.conftest import wait_done
from tests.support import Origin
from tests.support.speech import SpeechCorpus, unseen_copy
from tests.support.stacks import api_client, running_stack

pytestmark = pytest.mark.faults


@pytest.fixture(scope="module")
def child_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(
        tmp_path_factory.mktemp("child-faults"),
        "children",
        tracks=True,
        env={"TRANSMUTE_ACK_WAIT_SECONDS": "3", "TRANSMUTE_SHUTDOWN_GRACE_SECONDS": "2"},
    ) as stack:
        yield stack


@pytest.fixture
def api(child_stack: Stack) -> Iterator[httpx.Client]:
    with api_client(child_stack) as client:
        yield client


def subtitles_with_a_child(
    api: httpx.Client, origin: Origin, corpus: SpeechCorpus
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A subtitles parent on ~2 minutes of speech no test transcribed before, returned once its
    speech child exists."""
    clip = unseen_copy(corpus.long_speech, corpus.long_speech.with_name(f"long_{uuid.uuid4().hex}.m4a"))
    url = origin.url(clip.name)
    parent = api.post("/tasks", json={"kind": "subtitles", "url": url}).json()
    deadline = time.monotonic() + 120
    while not (children := api.get("/tasks", params={"parent_id": parent["id"]}).json()):
        assert time.monotonic() < deadline, "no child was created"
        time.sleep(0.1)
    return parent, children


def finished_with_children(api: httpx.Client, parent: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    done = wait_done(api, parent["id"], timeout=300)
    return done, api.get("/tasks", params={"parent_id": parent["id"]}).json()


@pytest.mark.parametrize(
    "sig",
    [signal.SIGKILL, signal.SIGTERM],
    ids=["killed", "shut-down"],  # SIGTERM: past the 2 s grace the parent is handed back
)
def test_a_parent_whose_worker_stops_mid_task_makes_one_child_and_succeeds(
    child_stack: Stack,
    api: httpx.Client,
    speech_origin: Origin,
    speech_corpus: SpeechCorpus,
    sig: signal.Signals,
) -> None:
    parent, _ = subtitles_with_a_child(api, speech_origin, speech_corpus)
    child_stack.restart("tracks", sig)  # the parent's worker stops while it waits
    done, children = finished_with_children(api, parent)
    assert done["status"] == "succeeded", done
    assert [c["status"] for c in children] == ["succeeded"], children
    assert done["outputs"][0]["type"] == "text/vtt"
    stored = child_stack.config.root / "storage" / "default" / parent["id"]
    assert not (stored / "_input").exists() or not any((stored / "_input").iterdir())


def test_a_parent_follows_its_child_across_a_restart_of_the_childs_service(
    child_stack: Stack, api: httpx.Client, speech_origin: Origin, speech_corpus: SpeechCorpus
) -> None:
    """intelligence_service restarts while a subtitles parent follows its speech child: the
    parent's WatchTask stream ends, it follows the child again on a new one, and both succeed."""
    parent, _ = subtitles_with_a_child(api, speech_origin, speech_corpus)
    child_stack.restart("intelligence", signal.SIGTERM)
    done, children = finished_with_children(api, parent)
    assert done["status"] == "succeeded", done
    assert [c["status"] for c in children] == ["succeeded"], children


def test_cancelling_a_parent_no_worker_holds_cancels_its_child(
    child_stack: Stack, api: httpx.Client, speech_origin: Origin, speech_corpus: SpeechCorpus
) -> None:
    """The parent's worker is dead (its task waits for redelivery), so only the API can cascade.
    intelligence_service is paused meanwhile, so the child cannot finish before the cancel."""
    parent, children = subtitles_with_a_child(api, speech_origin, speech_corpus)
    child_stack.pause("intelligence")
    try:
        child_stack.kill("tracks")
        before = api.get(f"/tasks/{children[0]['id']}").json()
        assert before["status"] not in {"succeeded", "failed", "cancelled"}, before
        assert api.post(f"/tasks/{parent['id']}/cancel").status_code == 200
        child = wait_done(api, children[0]["id"], timeout=60)
    finally:
        child_stack.resume("intelligence")
        child_stack.restart("tracks")
    assert child["status"] == "cancelled", child
