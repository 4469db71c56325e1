"""The task lifecycle seen from outside: SSE order, cancel mid-encode, a worker killed mid-task."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from stack import Stack, StackConfig
from tests.conftest import create, wait_done
from tests.support import Corpus, Origin

ORDER = ["waiting", "queued", "validating", "processing", "finishing", "succeeded"]


@pytest.fixture(scope="module")
def long_clip(corpus: Corpus) -> Path:
    """A 40 s clip: long enough that an h265 very_high encode runs for a while on 2 cores."""
    path = corpus.root / "long_clip.mp4"
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30:duration=40",
         "-f", "lavfi", "-i", "sine=frequency=300:duration=40",
         "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "500k",
         "-c:a", "aac", "-b:a", "64k", "-shortest", str(path)],
        check=True,
    )  # fmt: skip
    return path


def read_events(
    api: httpx.Client, task_id: str, *, timeout: float = 120.0
) -> list[tuple[str, dict[str, Any]]]:
    """All SSE events of a task until the server closes the stream."""
    events: list[tuple[str, dict[str, Any]]] = []
    topic = ""
    with api.stream("GET", f"/tasks/{task_id}/events", timeout=timeout) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("event: "):
                topic = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((topic, json.loads(line.removeprefix("data: "))))
    return events


def ffmpeg_pids(task_id: str) -> list[int]:
    """ffmpeg processes working in this task's temp dir (its name starts with the task id)."""
    found = subprocess.run(["pgrep", "-f", f"ffmpeg.*{task_id}"], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


def wait_status(api: httpx.Client, task_id: str, wanted: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = api.get(f"/tasks/{task_id}").json()
        if task["status"] == wanted and (wanted != "processing" or (task["progress"] or 0) > 0):
            return task  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} never reached {wanted}: {task}")


def test_sse_reports_every_status_in_order_then_closes(
    api: httpx.Client, origin: Origin, corpus: Corpus
) -> None:
    task = create(api, "video", origin.url(corpus.clip_av.name), width=160)
    events = read_events(api, task["id"])
    topics = [topic for topic, _ in events]
    statuses = [data["status"] for _, data in events]
    assert topics[0] == "task.created" and statuses[0] == "waiting"
    assert topics[-1] == "task.succeeded" and statuses[-1] == "succeeded"
    assert set(topics[1:-1]) == {"task.updated"}
    # Every lifecycle status appears, in order, and never goes back.
    assert [s for s in ORDER if s in statuses] == ORDER
    assert statuses == sorted(statuses, key=ORDER.index)
    progress = [data["progress"] for _, data in events if data["progress"] is not None]
    assert progress == sorted(progress) and progress[-1] == 100
    assert events[-1][1]["outputs"][0]["url"].startswith("http")


def test_sse_for_a_finished_task_replays_and_closes(
    api: httpx.Client, origin: Origin, corpus: Corpus
) -> None:
    task = create(api, "image", origin.url(corpus.png_small.name), width=32)
    wait_done(api, task["id"])
    events = read_events(api, task["id"], timeout=30)
    assert events[0][0] == "task.created" and events[-1][0] == "task.succeeded"


def test_sse_of_unknown_task_is_404(api: httpx.Client) -> None:
    response = api.get("/tasks/task_00000000missing/events")
    assert response.status_code == 404
    assert response.json()["kind"] == "task_not_found"


def test_cancel_stops_a_running_encode_within_two_seconds(
    api: httpx.Client, origin: Origin, long_clip: Path
) -> None:
    task = create(api, "video", origin.url(long_clip.name), codec="h265", quality="very_high")
    wait_status(api, task["id"], "processing")
    assert ffmpeg_pids(task["id"]), "the encode should be running"
    started = time.monotonic()
    response = api.post(f"/tasks/{task['id']}/cancel")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    while ffmpeg_pids(task["id"]) and time.monotonic() - started < 5:
        time.sleep(0.05)
    assert not ffmpeg_pids(task["id"]), "ffmpeg still running after cancel"
    assert time.monotonic() - started < 2.0
    time.sleep(0.5)  # a late progress write must not resurrect the task
    final = api.get(f"/tasks/{task['id']}").json()
    assert final["status"] == "cancelled" and final["outputs"] == []
    again = api.post(f"/tasks/{task['id']}/cancel")
    assert again.status_code == 409 and again.json()["kind"] == "task_terminal"


@pytest.fixture
def worker_stack(tmp_path: Path) -> Iterator[Stack]:
    """A stack whose media service runs only the API; work is done by two worker processes."""
    config = StackConfig.fresh(
        tmp_path,
        "test",
        media_role="api",
        env={
            "TRANSMUTE_ACK_WAIT_SECONDS": "2",
            "TRANSMUTE_WORKER_CONCURRENCY": "1",
            "TRANSMUTE_SHUTDOWN_GRACE_SECONDS": "1",
        },
    )
    with Stack(config) as running:
        yield running


def test_a_worker_killed_mid_task_loses_nothing(worker_stack: Stack, origin: Origin, long_clip: Path) -> None:
    workers = [worker_stack.add_worker(), worker_stack.add_worker()]
    headers = {"Authorization": f"Bearer {worker_stack.config.api_key}"}
    with httpx.Client(base_url=worker_stack.base_url, headers=headers, timeout=30) as api:
        time.sleep(1.0)  # both workers subscribed
        task = create(api, "video", origin.url(long_clip.name), width=320, quality="very_low")
        wait_status(api, task["id"], "processing")
        pids = ffmpeg_pids(task["id"])
        assert pids
        parent = int(Path(f"/proc/{pids[0]}/stat").read_text().split(") ")[1].split()[1])
        victim = next(w for w in workers if w.pid == parent)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        done = wait_done(api, task["id"], timeout=180)
        assert done["status"] == "succeeded", done
        assert done["progress"] == 100
        assert len(done["outputs"]) == 1
        stored = list((worker_stack.config.root / "storage" / "default" / task["id"]).iterdir())
        assert [p.name for p in stored] == ["video.mp4"], "a redo must overwrite, not duplicate"
        # The orphaned ffmpeg of the killed worker died with it.
        assert all(not Path(f"/proc/{pid}").exists() for pid in pids)
        listed = api.get("/tasks", params={"limit": 100}).json()
        assert [t["id"] for t in listed] == [task["id"]]


def test_sigterm_releases_a_running_task_to_another_worker(
    worker_stack: Stack, origin: Origin, long_clip: Path
) -> None:
    """Graceful shutdown: past the grace period the running task is handed back at once (nak),
    the leaving worker's ffmpeg is stopped, and another worker finishes the task."""
    workers = [worker_stack.add_worker(), worker_stack.add_worker()]
    headers = {"Authorization": f"Bearer {worker_stack.config.api_key}"}
    with httpx.Client(base_url=worker_stack.base_url, headers=headers, timeout=30) as api:
        time.sleep(1.0)
        task = create(api, "video", origin.url(long_clip.name), width=320, quality="very_low")
        wait_status(api, task["id"], "processing")
        pids = ffmpeg_pids(task["id"])
        parent = int(Path(f"/proc/{pids[0]}/stat").read_text().split(") ")[1].split()[1])
        leaving = next(w for w in workers if w.pid == parent)
        started = time.monotonic()
        leaving.send_signal(signal.SIGTERM)
        assert leaving.wait(timeout=15) == 0
        assert time.monotonic() - started < 10  # grace (1 s) + shutdown, not the encode's length
        assert all(not Path(f"/proc/{pid}").exists() for pid in pids)
        done = wait_done(api, task["id"], timeout=180)
        assert done["status"] == "succeeded", done
        assert len(done["outputs"]) == 1
