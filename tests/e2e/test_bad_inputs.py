"""Inputs that cannot be processed: each task fails with one readable sentence and the stack serves on.

Also the fetcher's guard against private addresses, on a second stack started with
``allow_private_urls=False`` (the session stack allows them so it can reach the local origin).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from stack import Stack, StackConfig
from tests.conftest import MAX_INPUT_BYTES, create, run_task, wait_done
from tests.support import Corpus, Origin

# name -> (kind, input: corpus field, "oversized.bin", an origin special path or an absolute URL,
#          options, a fragment the error must contain)
SPECS: dict[str, tuple[str, str, dict[str, Any], str]] = {
    "not_found": ("video", "missing", {}, "HTTP 404"),
    "html_file": ("video", "html_page", {}, "not a media file"),
    "html_served": ("image", "html", {}, "not a media file"),
    "truncated_mp4": ("video", "truncated_mp4", {}, "not a media file"),
    "oversized": ("video", "oversized.bin", {}, f"larger than the limit of {MAX_INPUT_BYTES} bytes"),
    "unresolvable_host": ("video", "http://nonexistent.invalid/x.mp4", {}, "could not be resolved"),
    "video_start_beyond_end": ("video", "clip_av", {"start": 5}, "beyond the end of the input"),
    "audio_start_beyond_end": ("audio", "audio_stereo", {"start": 10}, "beyond the end of the input"),
    "frame_start_beyond_end": ("image", "clip_av", {"start": 2.5}, "beyond the end of the input"),
}


def input_url(origin: Origin, corpus: Corpus, source: str) -> str:
    if source.startswith("http"):
        return source
    path = corpus.files().get(source)
    return origin.url(path.name if path is not None else source)


@pytest.fixture(scope="module")
def failed(api: httpx.Client, origin: Origin, corpus: Corpus) -> dict[str, dict[str, Any]]:
    """Every task in SPECS, created up front and then awaited."""
    created = {
        name: create(api, kind, input_url(origin, corpus, source), **options)
        for name, (kind, source, options, _) in SPECS.items()
    }
    return {name: wait_done(api, task["id"], timeout=120) for name, task in created.items()}


def assert_one_sentence(error: Any) -> None:
    """A single line, a single sentence, no traceback or Python internals."""
    assert isinstance(error, str) and error.strip(), error
    assert "\n" not in error and len(error) < 300, error
    for leak in ("Traceback", 'File "', "Error:", "Exception", "errno", "<"):
        assert leak not in error, error
    assert not re.search(r"[.!?]\s+\S", error), f"more than one sentence: {error!r}"


@pytest.mark.parametrize("name", list(SPECS))
def test_bad_input_fails_with_one_sentence(failed: dict[str, dict[str, Any]], name: str) -> None:
    task = failed[name]
    fragment = SPECS[name][3]
    assert task["status"] == "failed", task
    assert_one_sentence(task["error"])
    assert fragment in task["error"], task["error"]
    assert task["outputs"] == []
    assert task["finished_at"] is not None


def test_fetch_failures_record_no_input(failed: dict[str, dict[str, Any]]) -> None:
    """Nothing was probed when the download itself failed."""
    for name in ("not_found", "oversized", "unresolvable_host"):
        assert failed[name]["inputs"] == [], failed[name]


def test_stack_still_serves_after_bad_inputs(
    api: httpx.Client, stack: Stack, origin: Origin, corpus: Corpus, failed: dict[str, dict[str, Any]]
) -> None:
    assert all(proc.poll() is None for proc in stack.procs.values())
    assert api.get("/health").status_code == 200
    task = run_task(api, "image", origin.url(corpus.png_small.name), width=32)
    assert task["status"] == "succeeded", task
    assert task["outputs"][0]["width"] == 32


def test_a_redirect_to_a_file_is_followed(api: httpx.Client, origin: Origin, corpus: Corpus) -> None:
    target = origin.url(corpus.png_small.name)
    before = origin.hits(corpus.png_small.name)
    task = run_task(api, "image", origin.redirect_url(target), format="webp")
    assert task["status"] == "succeeded", task
    assert task["outputs"][0]["type"] == "image/webp"
    assert (task["inputs"][0]["width"], task["inputs"][0]["height"]) == (64, 64)
    assert origin.hits(corpus.png_small.name) > before


@pytest.fixture
def guarded_stack(tmp_path: Path) -> Iterator[Stack]:
    """A stack with the production default: no fetching from private or reserved addresses."""
    config = StackConfig.fresh(
        tmp_path,
        "test",
        allow_private_urls=False,
        intelligence=False,  # only media kinds here: no models to load
    )
    with Stack(config) as running:
        yield running


def test_private_address_is_refused_without_a_request(
    guarded_stack: Stack, origin: Origin, corpus: Corpus
) -> None:
    marker = secrets.token_hex(8)
    url = origin.url(f"{corpus.png_small.name}?guard={marker}")
    headers = {"Authorization": f"Bearer {guarded_stack.config.api_key}"}
    with httpx.Client(base_url=guarded_stack.base_url, headers=headers, timeout=30) as api:
        response = api.post("/tasks", json={"kind": "image", "url": url})
        listed = api.get("/tasks").json()
    # A private address written out needs no DNS to judge: refused at create, nothing stored.
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["kind"] == "request_invalid" and "127.0.0.1 is loopback" in body["message"], body
    assert_one_sentence(body["message"])
    assert listed == []
    assert not [path for path in origin.request_log if marker in path], "the origin was contacted"
