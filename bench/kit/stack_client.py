"""The stack as a bench drives it: a :class:`stack.Stack` started in a temp dir, an HTTP client for
its gateway, creating a task and waiting for it (Server-Sent Events or polling)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.kit.report import emit
from stack import Stack, StackConfig

TERMINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled"})
_TERMINAL_TOPICS = frozenset({"task.succeeded", "task.failed"})


@contextmanager
def running_stack(
    root: Path, env: dict[str, str] | None = None, *, media_role: str = "all", intelligence: bool = False
) -> Iterator[Stack]:
    """A started stack (nats-server, media_service, gateway; intelligence_service when asked) under
    ``root``; stopped on exit.

    Private origin URLs are allowed (the benches serve their inputs from 127.0.0.1); every other
    setting is the service default unless ``env`` overrides it.
    """
    config = StackConfig.fresh(
        root,
        "bench",
        env=dict(env or {}),
        media_role=media_role,
        intelligence=intelligence,
    )
    stack = Stack(config)
    try:
        stack.start()
    except Exception:
        for name in stack.procs:
            emit(f"--- {name} log ---\n{stack.log_text(name)}")
        stack.stop()
        raise
    try:
        yield stack
    finally:
        stack.stop()


def api_client(stack: Stack, timeout: float = 120.0) -> httpx.Client:
    """An HTTP client for the stack's gateway, authenticated with its API key."""
    return httpx.Client(
        base_url=stack.base_url,
        headers={"Authorization": f"Bearer {stack.config.api_key}"},
        timeout=timeout,
    )


def create_task(client: httpx.Client, kind: str, url: str, options: dict[str, Any]) -> dict[str, Any]:
    """POST /tasks and return the created task; raise on anything but 201."""
    response = client.post("/tasks", json={"kind": kind, "url": url, "options": options})
    if response.status_code != 201:
        raise RuntimeError(f"POST /tasks answered {response.status_code}: {response.text}")
    task: dict[str, Any] = response.json()
    return task


def wait_sse(client: httpx.Client, task_id: str) -> dict[str, Any]:
    """Read ``GET /tasks/{id}/events`` until a terminal event; return the task it carries.

    The stream replays every event since creation, so opening it after the POST misses nothing.
    """
    topic = ""
    data: list[str] = []
    with client.stream("GET", f"/tasks/{task_id}/events") as response:
        if response.status_code != 200:
            raise RuntimeError(f"GET /tasks/{task_id}/events answered {response.status_code}")
        for line in response.iter_lines():
            if line.startswith("event:"):
                topic = line[len("event:") :].strip()
            elif line.startswith("data:"):
                data.append(line[len("data:") :].strip())
            elif not line and data:
                task: dict[str, Any] = json.loads("\n".join(data))
                if topic in _TERMINAL_TOPICS or task.get("status") in TERMINAL_STATUSES:
                    return task
                topic, data = "", []
    raise RuntimeError(f"the event stream of task {task_id} ended before a terminal event")


def wait_poll(
    client: httpx.Client, task_id: str, *, interval: float = 0.02, timeout: float = 600.0
) -> dict[str, Any]:
    """Poll ``GET /tasks/{id}`` every ``interval`` seconds until the task is terminal; return it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task: dict[str, Any] = client.get(f"/tasks/{task_id}").json()
        if task.get("status") in TERMINAL_STATUSES:
            return task
        time.sleep(interval)
    raise RuntimeError(f"task {task_id} did not finish within {timeout:g} s")


def wait_done(client: httpx.Client, task_id: str, method: str) -> dict[str, Any]:
    """Wait for a terminal task with ``method`` ``"sse"`` or ``"poll"``."""
    return wait_sse(client, task_id) if method == "sse" else wait_poll(client, task_id)
