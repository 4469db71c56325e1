"""Session fixtures: a generated media corpus, a local origin server and the real stack.

The stack is real: nats-server (JetStream, temp store, free port), media_service and the
gateway as child processes on free ports, the same way ``make run`` starts them.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from stack import Stack, StackConfig
from tests.support import Corpus, Origin, build_corpus
from tests.support.speech import SpeechCorpus, build_speech_corpus

TERMINAL = {"succeeded", "failed", "cancelled"}
MAX_INPUT_BYTES = 5_000_000
OTHER_PROJECT_KEY = "ittybit_other_" + secrets.token_hex(8)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    built = build_corpus(tmp_path_factory.mktemp("corpus"))
    (built.root / "oversized.bin").write_bytes(b"\0" * (MAX_INPUT_BYTES + 1))
    return built


@pytest.fixture(scope="session")
def origin(corpus: Corpus) -> Iterator[Origin]:
    with Origin(corpus.root) as served:
        yield served


@pytest.fixture(scope="session")
def speech_corpus(tmp_path_factory: pytest.TempPathFactory) -> SpeechCorpus:
    """Speech clips made with espeak-ng, for the intelligence and tracks kinds."""
    return build_speech_corpus(tmp_path_factory.mktemp("speech"))


@pytest.fixture(scope="session")
def speech_origin(speech_corpus: SpeechCorpus) -> Iterator[Origin]:
    with Origin(speech_corpus.english.parent) as served:
        yield served


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("stack")
    keys_file = root / "keys.json"
    keys_file.write_text(json.dumps({OTHER_PROJECT_KEY: "other"}))
    config = StackConfig.fresh(
        root,
        "test",
        env={
            "TRANSMUTE_API_KEYS_FILE": str(keys_file),
            "TRANSMUTE_MAX_INPUT_BYTES": str(MAX_INPUT_BYTES),
            "TRANSMUTE_ACK_WAIT_SECONDS": "3",
            "TRANSMUTE_WORKER_CONCURRENCY": "2",
            "TRANSMUTE_SHUTDOWN_GRACE_SECONDS": "5",
        },
    )
    running = Stack(config)
    try:
        running.start()
    except Exception:
        for name in running.procs:
            print(f"--- {name} log ---\n{running.log_text(name)}")
        running.stop()
        raise
    yield running
    running.stop()


@pytest.fixture(scope="session")
def api(stack: Stack) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {stack.config.api_key}"}
    with httpx.Client(base_url=stack.base_url, headers=headers, timeout=30.0) as client:
        yield client


@pytest.fixture(scope="session")
def other_api(stack: Stack) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {OTHER_PROJECT_KEY}"}
    with httpx.Client(base_url=stack.base_url, headers=headers, timeout=30.0) as client:
        yield client


def create(api: httpx.Client, kind: str, url: str, **options: Any) -> dict[str, Any]:
    """POST a task and return its JSON, asserting the 201."""
    response = api.post("/tasks", json={"kind": kind, "url": url, "options": options})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def wait_done(api: httpx.Client, task_id: str, *, timeout: float = 120.0) -> dict[str, Any]:
    """Poll until the task reaches a terminal status."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = api.get(f"/tasks/{task_id}").json()
        if task["status"] in TERMINAL:
            return task  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError(f"task {task_id} did not finish within {timeout} s: {task}")


def run_task(api: httpx.Client, kind: str, url: str, **options: Any) -> dict[str, Any]:
    return wait_done(api, create(api, kind, url, **options)["id"])


def run_all(
    api: httpx.Client, kind: str, specs: dict[str, tuple[str, dict[str, Any]]]
) -> dict[str, dict[str, Any]]:
    """POST every (url, options) first, then wait for each; a refused POST is kept as its error body
    under ``status: "refused"`` so only the tests that use it fail."""
    created: dict[str, dict[str, Any]] = {}
    for name, (url, options) in specs.items():
        response = api.post("/tasks", json={"kind": kind, "url": url, "options": options})
        created[name] = (
            response.json()
            if response.status_code == 201
            else {"status": "refused", "response": response.text}
        )
    return {
        name: wait_done(api, task["id"], timeout=280) if "id" in task else task
        for name, task in created.items()
    }


def download(api: httpx.Client, url: str, dest: Path) -> Path:
    response = httpx.get(url, timeout=30.0)
    assert response.status_code == 200, response.text
    dest.write_bytes(response.content)
    return dest
