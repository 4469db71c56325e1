"""Inputs crafted to make ffmpeg read other files: every one is refused, for every media kind.

The canary is world-readable and outside any work dir, so only the demuxer rules (not file
permissions or the sandbox) keep it out of an output; a local listener counts connections that a
playlist's ``http://`` entry would make. ``tests/unit/test_demuxers.py`` shows, on the same files,
that the ffmpeg binary *would* read the canary without those rules.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import pytest

from stack import Stack
from tests.conftest import create, run_task, wait_done
from tests.e2e.test_bad_inputs import assert_one_sentence
from tests.support import Corpus, Origin
from tests.support.hostile import HostileCorpus, build_hostile_corpus

KINDS = ("video", "image", "audio")


class ConnectionCounter:
    """A loopback TCP listener that only counts the connections it accepts."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()


@pytest.fixture(scope="module")
def listener() -> Iterator[ConnectionCounter]:
    counter = ConnectionCounter()
    yield counter
    counter.close()


def storage_path(stack: Stack, output_url: str) -> Path:
    """Where the file backend keeps the object a signed link names (``/files/<exp>/<sig>/<key>``)."""
    key = unquote(urlsplit(output_url).path).split("/", 4)[4]
    return stack.config.root / "storage" / key


@pytest.fixture(scope="module")
def hostile(
    stack: Stack, other_api: httpx.Client, origin: Origin, corpus: Corpus, listener: ConnectionCounter
) -> Iterator[HostileCorpus]:
    private = run_task(other_api, "image", origin.url(corpus.png_small.name))
    assert private["status"] == "succeeded", private
    canary_dir = Path(tempfile.mkdtemp(prefix="transmute-canary-"))
    canary_dir.chmod(0o755)
    try:
        yield build_hostile_corpus(
            corpus.root / "hostile",
            canary_dir,
            listener.url,
            storage_path(stack, private["outputs"][0]["url"]),
        )
    finally:
        shutil.rmtree(canary_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def outcomes(
    api: httpx.Client, origin: Origin, hostile: HostileCorpus
) -> dict[tuple[str, str], dict[str, Any]]:
    """Every hostile file as every media kind, created up front and then awaited."""
    created = {
        (case, kind): create(api, kind, origin.url(served))
        for case, (served, _) in hostile.cases.items()
        for kind in KINDS
    }
    return {key: wait_done(api, task["id"], timeout=60) for key, task in created.items()}


def test_every_hostile_input_fails_with_its_reason(
    outcomes: dict[tuple[str, str], dict[str, Any]], hostile: HostileCorpus
) -> None:
    assert len(outcomes) == len(hostile.cases) * len(KINDS) >= 30
    for (case, kind), task in outcomes.items():
        expected = hostile.cases[case][1]
        assert task["status"] == "failed", (case, kind, task)
        assert task["error"] == expected, (case, kind, task["error"])
        assert_one_sentence(task["error"])
        assert not task.get("outputs"), (case, kind, task)


def test_no_playlist_entry_was_fetched(
    outcomes: dict[tuple[str, str], dict[str, Any]], listener: ConnectionCounter, origin: Origin
) -> None:
    assert outcomes  # every task has finished
    assert listener.connections == 0
    assert not any("/seg.ts" in record.path for record in origin.requests)


def test_the_canary_is_there_to_be_read(hostile: HostileCorpus) -> None:
    """The refusals above are not an accident of permissions: anyone may read the canary."""
    assert hostile.canary.stat().st_mode & 0o004
    assert os.access(hostile.canary.parent, os.X_OK)
    assert hostile.canary.stat().st_size > 1000


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("data:video/mp4;base64,AAAAIGZ0eXBpc29t", "http"),
        ("concat:/etc/passwd|/etc/hostname", "http"),
        ("file:///etc/passwd", "http"),
        ("subfile:,,start,0,end,0,,:/etc/passwd", "http"),
        ("hls+http://127.0.0.1/x.m3u8", "http"),
    ],
)
def test_non_http_urls_are_refused_at_create(api: httpx.Client, url: str, fragment: str) -> None:
    for kind in KINDS:
        response = api.post("/tasks", json={"kind": kind, "url": url})
        assert response.status_code == 400, response.text
        body = response.json()
        assert body["kind"] == "request_invalid" and fragment in body["message"], body


def test_the_normal_corpus_still_opens_with_an_explicit_demuxer(
    api: httpx.Client, origin: Origin, corpus: Corpus
) -> None:
    """mp4, flac and mp3 inputs through ffmpeg with ``-f`` and both whitelists."""
    for kind, source in (
        ("video", corpus.clip_av),
        ("audio", corpus.audio_51),
        ("audio", corpus.audio_stereo),
    ):
        task = run_task(api, kind, origin.url(source.name))
        assert task["status"] == "succeeded", task
