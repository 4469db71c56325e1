"""The create path under faults, on its own real stack, under a steady bounded create load.

Three faults, one project each so their counts stay apart: (1) nats-server restarted (SIGTERM, 1 s
down, same store); (2) the media API process SIGKILLed and started again; (3) the worker running an
encode SIGKILLed mid-encode, with the load going on. After each, the load stops, the project's
tasks are given time to settle, and the counts that must be zero are asserted zero: no 500s, no
create left without a 201 (clients retry 503s with the same key, as the README says), nothing stuck
non-terminal, nothing stored that a client was told failed, nothing duplicated.

Run alone with ``pytest -m faults``; it is also part of ``make test`` (about half a minute).
Everything stays on loopback; every process is stopped at the end.
"""

from __future__ import annotations

import json
import logging
import secrets
import signal
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from stack import Stack, StackConfig
from tests.support import Corpus, Origin
from tests.support.load import FAULT_ENV, MUST_BE_ZERO, kill_mid_encode, under_load
from tests.support.sse import read_sse

pytestmark = pytest.mark.faults
log = logging.getLogger(__name__)

PHASES = ("nats", "media", "worker")


@pytest.fixture(scope="module")
def keys() -> dict[str, str]:
    return {phase: f"ittybit_faults_{phase}_" + secrets.token_hex(6) for phase in PHASES}


@pytest.fixture(scope="module")
def fault_stack(tmp_path_factory: pytest.TempPathFactory, keys: dict[str, str]) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("faults")
    keys_file = root / "keys.json"
    keys_file.write_text(json.dumps({key: f"faults-{phase}" for phase, key in keys.items()}))
    config = StackConfig.fresh(
        root,
        "faults",
        media_role="api",  # workers are separate processes, so a worker can die on its own
        intelligence=False,
        env={**FAULT_ENV, "TRANSMUTE_API_KEYS_FILE": str(keys_file)},
    )
    with Stack(config) as stack:
        stack.add_worker()
        stack.add_worker()
        yield stack


def _image(origin: Origin, corpus: Corpus) -> dict[str, Any]:
    return {"kind": "image", "url": origin.url(corpus.png_small.name), "options": {"width": 16}}


def _assert_clean(counts: dict[str, float]) -> None:
    log.info("fault counts %s", counts)
    assert counts["creates"] >= 20, counts
    assert {name: counts[name] for name in MUST_BE_ZERO} == dict.fromkeys(MUST_BE_ZERO, 0), counts
    assert counts["succeeded"] == counts["tasks stored"] == counts["creates"], counts


def test_nats_restart_loses_and_strands_nothing(
    fault_stack: Stack, keys: dict[str, str], origin: Origin, corpus: Corpus
) -> None:
    def restart_nats() -> None:
        fault_stack.restart("nats", signal.SIGTERM, down_s=1.0)

    _assert_clean(under_load(fault_stack, keys["nats"], _image(origin, corpus), restart_nats))


def test_media_api_killed_and_restarted_makes_no_ghosts_or_duplicates(
    fault_stack: Stack, keys: dict[str, str], origin: Origin, corpus: Corpus
) -> None:
    def kill_media() -> None:
        fault_stack.restart("media", signal.SIGKILL)

    _assert_clean(under_load(fault_stack, keys["media"], _image(origin, corpus), kill_media))


def test_a_worker_killed_mid_encode_loses_no_task(
    fault_stack: Stack, keys: dict[str, str], origin: Origin, corpus: Corpus
) -> None:
    video = {"kind": "video", "url": origin.url(corpus.clip_av.name), "options": {"format": "webm"}}
    headers = {"Authorization": f"Bearer {keys['worker']}"}
    with httpx.Client(base_url=fault_stack.base_url, headers=headers, timeout=30.0) as client:
        killed: list[tuple[str, str | None]] = []
        counts = under_load(
            fault_stack,
            keys["worker"],
            _image(origin, corpus),
            lambda: killed.append(kill_mid_encode(fault_stack, client, video)),
        )
        ((video_id, victim),) = killed
        final = client.get(f"/tasks/{video_id}").json()
    assert victim is not None and victim.startswith("media-worker-"), "the encode was seen in a worker"
    assert final["status"] == "succeeded", final
    _assert_clean(counts)


def test_an_sse_stream_whose_backend_dies_ends_with_an_error_and_resumes(
    fault_stack: Stack, keys: dict[str, str], origin: Origin, corpus: Corpus
) -> None:
    video = {"kind": "video", "url": origin.url(corpus.clip_av.name), "options": {"format": "webm"}}
    headers = {"Authorization": f"Bearer {keys['worker']}"}
    with httpx.Client(base_url=fault_stack.base_url, headers=headers, timeout=60.0) as client:
        task_id = client.post("/tasks", json=video).json()["id"]
        seen: list[tuple[str, str]] = []  # (field, value) lines up to the end of the stream
        with client.stream("GET", f"/tasks/{task_id}/events") as response:
            killed = False
            for line in response.iter_lines():
                if line.startswith(("id:", "event:")):
                    name, _, value = line.partition(":")
                    seen.append((name, value.strip()))
                if line == "" and seen and not killed:
                    fault_stack.restart("media", signal.SIGKILL)  # the API process serving the stream
                    killed = True
        assert ("event", "error") in seen, seen
        last = [value for name, value in seen if name == "id"][-1]
        resumed = None
        for _ in range(60):  # the gateway answers 503 until the API process is back
            try:
                resumed = read_sse(client, f"/tasks/{task_id}/events", headers={"Last-Event-ID": last})
                break
            except AssertionError:
                time.sleep(0.25)
    assert resumed and resumed[-1].topic == "task.succeeded", resumed
    assert all(int(event.id or 0) > int(last) for event in resumed)
