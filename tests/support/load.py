"""A steady, bounded create load and the counts a fault leaves behind (the fault suite and
``bench/faults.py`` share both).

``CreateLoad`` sends ``POST /tasks`` at a fixed rate from a few threads, each create with its own
``Idempotency-Key`` (also written into the task's metadata, so stored tasks map back to creates).
It behaves as the README tells clients to: on a 503 or a dropped connection it waits
``Retry-After`` and sends the same request with the same key again, up to ``attempts`` times.
``tally`` then compares what the clients were told with what the store holds.
"""

from __future__ import annotations

import statistics
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from stack import Stack

TERMINAL = {"succeeded", "failed", "cancelled"}
# Short leases and sweeps, so that faults settle within seconds (the fault suite and the bench).
FAULT_ENV = {
    "TRANSMUTE_ACK_WAIT_SECONDS": "3",
    "TRANSMUTE_SWEEP_AFTER_SECONDS": "2",
    "TRANSMUTE_SWEEP_INTERVAL_SECONDS": "1",
    "TRANSMUTE_REQUEST_TIMEOUT_SECONDS": "15",
    "TRANSMUTE_SHUTDOWN_GRACE_SECONDS": "2",
}


@dataclass
class CreateResult:
    """What one logical create (one key) was told, attempt by attempt."""

    key: str
    statuses: list[int] = field(default_factory=list)  # 0 for a connection error
    task_id: str | None = None
    seconds: float = 0.0  # first send to the final answer, retries included
    first_seconds: float = 0.0  # the first attempt alone


class CreateLoad:
    """``rate`` creates per second over ``connections`` threads until ``stop()``."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        body: Callable[[], dict[str, Any]],
        *,
        rate: float = 10.0,
        connections: int = 8,
        attempts: int = 6,
    ) -> None:
        self._base_url = base_url
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._body = body
        self._interval = 1.0 / rate
        self._attempts = attempts
        self._pool = ThreadPoolExecutor(connections)
        self._local = threading.local()
        self._stop = threading.Event()
        self._clock = threading.Thread(target=self._tick, daemon=True)
        self._results: list[CreateResult] = []
        self._lock = threading.Lock()

    def __enter__(self) -> CreateLoad:
        self._clock.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> list[CreateResult]:
        """Stop sending; wait for the creates in flight; return every create's result."""
        self._stop.set()
        self._clock.join()
        self._pool.shutdown(wait=True)
        return list(self._results)

    def _tick(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            self._pool.submit(self._create)
            next_at += self._interval
            self._stop.wait(max(next_at - time.monotonic(), 0.0))

    def _client(self) -> httpx.Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(base_url=self._base_url, headers=self._headers, timeout=30.0)
            self._local.client = client
        return client

    def _create(self) -> None:
        result = CreateResult(key=uuid.uuid4().hex)
        body = self._body()
        body["metadata"] = {"load_key": result.key}
        started = time.monotonic()
        for _ in range(self._attempts):
            sent = time.monotonic()
            retry_after = 1.0
            try:
                response = self._client().post("/tasks", json=body, headers={"Idempotency-Key": result.key})
                result.statuses.append(response.status_code)
                retry_after = float(response.headers.get("Retry-After", "1"))
            except httpx.TransportError:
                result.statuses.append(0)
                response = None
            if len(result.statuses) == 1:
                result.first_seconds = time.monotonic() - sent
            if response is not None and response.status_code == 201:
                result.task_id = response.json()["id"]
                break
            if response is not None and response.status_code != 503:
                break  # not a fault: retrying the same request cannot help
            time.sleep(retry_after)
        result.seconds = time.monotonic() - started
        with self._lock:
            self._results.append(result)


def stored_tasks(client: httpx.Client) -> list[dict[str, Any]]:
    """Every task of the client's project, through the paginated list."""
    tasks: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 100, "order": "asc"}
    while True:
        response = client.get("/tasks", params=params)
        response.raise_for_status()
        page = response.json()
        tasks += page
        if response.headers.get("Has-More") != "true" or not page:
            return tasks
        params["after"] = page[-1]["id"]


def settle(client: httpx.Client, *, timeout: float) -> list[dict[str, Any]]:
    """The project's tasks once none is left unfinished, or as they are when ``timeout`` runs out."""
    deadline = time.monotonic() + timeout
    while True:
        tasks = stored_tasks(client)
        if all(t["status"] in TERMINAL for t in tasks) or time.monotonic() > deadline:
            return tasks
        time.sleep(0.5)


def _percentile(values: list[float], q: int) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def tally(results: list[CreateResult], tasks: list[dict[str, Any]]) -> dict[str, float]:
    """The counts of one fault: what clients were told against what is stored (tasks the load did
    not create, without a ``load_key``, are left out)."""
    tasks = [t for t in tasks if (t.get("metadata") or {}).get("load_key")]
    by_key = Counter(str(t["metadata"]["load_key"]) for t in tasks)
    told_created = {r.key for r in results if r.task_id is not None}
    statuses = Counter(s for r in results for s in r.statuses)
    seconds = sorted(r.seconds * 1000 for r in results)
    return {
        "creates": len(results),
        "answered 201": statuses[201],
        "answered 503": statuses[503],
        "answered 500": sum(n for s, n in statuses.items() if s >= 500 and s != 503),
        "connection errors": statuses[0],
        "creates never told 201": len(results) - len(told_created),
        "tasks stored": len(tasks),
        "succeeded": sum(t["status"] == "succeeded" for t in tasks),
        "stuck non-terminal": sum(t["status"] not in TERMINAL for t in tasks),
        "stored but reported failed": sum(n for key, n in by_key.items() if key not in told_created),
        "duplicated": sum(n - 1 for n in by_key.values() if n > 1),
        "create p50 ms": round(_percentile(seconds, 50), 1),
        "create p99 ms": round(_percentile(seconds, 99), 1),
    }


MUST_BE_ZERO = (
    "answered 500",
    "creates never told 201",
    "stuck non-terminal",
    "stored but reported failed",
    "duplicated",
)


def under_load(
    stack: Stack,
    api_key: str,
    body: dict[str, Any],
    fault: Callable[[], None],
    *,
    rate: float = 8.0,
    load_s: float = 3.0,
    settle_s: float = 60.0,
) -> dict[str, float]:
    """Load for ``load_s``, the fault, load for ``load_s`` more; then let the project's tasks
    settle and count (``tally``). ``api_key`` should be a project of its own."""
    with CreateLoad(stack.base_url, api_key, lambda: dict(body), rate=rate, connections=6) as load:
        time.sleep(load_s)
        fault()
        time.sleep(load_s)
        results = load.stop()
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=stack.base_url, headers=headers, timeout=30.0) as client:
        return tally(results, settle(client, timeout=settle_s))


def process_running(stack: Stack, task_id: str) -> str | None:
    """The name of the stack process whose ffmpeg works on ``task_id`` (found through the ffmpeg's
    parents: the worker runs it under setpriv)."""
    found = subprocess.run(["pgrep", "-f", f"{task_id}-"], capture_output=True, text=True)
    names = {proc.pid: name for name, proc in stack.procs.items() if proc.poll() is None}
    for pid in (int(p) for p in found.stdout.split()):
        while pid > 1:
            if pid in names:
                return names[pid]
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                break
            pid = int(stat.rsplit(")", 1)[-1].split()[1])  # the parent's pid
    return None


def kill_mid_encode(stack: Stack, client: httpx.Client, body: dict[str, Any]) -> tuple[str, str | None]:
    """Create the task ``body`` describes, SIGKILL the worker process as soon as its ffmpeg runs,
    start a fresh worker; return (task id, the killed process's name or None if none was seen)."""
    created = client.post("/tasks", json=body)
    created.raise_for_status()
    task_id = created.json()["id"]
    victim = None
    deadline = time.monotonic() + 30
    while victim is None and time.monotonic() < deadline:
        victim = process_running(stack, task_id)
        if victim is None:
            time.sleep(0.02)
    if victim is not None:
        stack.kill(victim)
    stack.add_worker()
    return task_id, victim
