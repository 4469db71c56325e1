"""Benchmarks that drive the real local stack (see ``bench/README.md``).

Shared plumbing for ``bench.overhead`` and ``bench.latency``: output, starting a :class:`stack.Stack`
in a temp dir, creating a task and waiting for it (Server-Sent Events or polling), percentiles, and
reading the media service's JSON log for per-phase timestamps. A benchmark's output is its product,
so results go to stdout with :func:`emit`; nothing here asserts on timings.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from stack import Stack, StackConfig

TERMINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled"})
_TERMINAL_TOPICS = frozenset({"task.succeeded", "task.failed"})


def emit(line: str = "") -> None:
    """Write one line of results to stdout (flushed, so progress shows while a bench runs)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


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


def timed_argvs(argvs: list[list[str]], out: Path) -> float:
    """Run ffmpeg ``argvs`` one after another with their outputs under a fresh ``out`` (each
    argv's output folder made first); return the wall seconds."""
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    for argv in argvs:
        Path(argv[-1]).parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, check=True)
    return time.perf_counter() - started


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct``-th percentile (0..100) with linear interpolation between closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class TaskMarks:
    """Wall-clock times (``time.time()``) the media service logged for one task; None if absent."""

    created: float | None = None
    started: float | None = None
    finished: float | None = None


def task_marks(log_path: Path) -> dict[str, TaskMarks]:
    """Per task id: when media_service logged ``task created``, ``task started`` and its outcome.

    The log is JSON lines with ``ts`` in seconds (millisecond resolution); lines that are not
    JSON are skipped. ``task created`` is logged once the task is stored and queued (just before
    the gRPC reply), ``task started`` once a worker has leased it and recorded ``validating``,
    ``task succeeded``/``task failed`` after the final status write.
    """
    marks: dict[str, dict[str, float]] = {}
    if not log_path.exists():
        return {}
    for raw in log_path.read_text(errors="replace").splitlines():
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(line, dict) or "task_id" not in line:
            continue
        field = {"task created": "created", "task started": "started"}.get(str(line.get("msg")))
        if line.get("msg") in ("task succeeded", "task failed"):
            field = "finished"
        if field is None:
            continue
        marks.setdefault(str(line["task_id"]), {}).setdefault(field, float(line["ts"]))
    return {task_id: TaskMarks(**fields) for task_id, fields in marks.items()}


def cpu_description() -> str:
    """``"<n> CPUs, <model name>"`` from the OS and /proc/cpuinfo (best effort)."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{count} CPUs, {model}"


def load_average() -> str:
    """The 1/5/15-minute load averages, to tell a quiet machine from a busy one in the output."""
    try:
        one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    except (OSError, ValueError):
        return "load average unknown"
    return f"load average {one} {five} {fifteen}"


def process_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) used by ``pid`` and its reaped children, from /proc; 0 if gone.

    ffmpeg runs as a child the media service waits for, so its time lands in the service's
    ``cutime``/``cstime`` once they exit.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    # After the command name: state is field 3, so utime..cstime (fields 14..17) sit at 11..14.
    ticks = sum(int(value) for value in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def stack_cpu_seconds(stack: Stack) -> dict[str, float]:
    """CPU seconds used so far by each of the stack's processes (children included), by name."""
    return {name: process_cpu_seconds(proc.pid) for name, proc in stack.procs.items()}


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Per-process CPU seconds spent between two :func:`stack_cpu_seconds` readings."""
    return {name: after.get(name, 0.0) - before.get(name, 0.0) for name in after}
