"""``make run-scaled`` behaves like a cluster: one of its nats nodes and one of its media workers
are SIGKILLed while tasks are in flight, the stack starts both again, and every task it accepted
succeeds. And a process that keeps crashing is given up on: the stack stops and exits 1, naming it.

Each test runs ``python -m stack`` as a real subprocess, as ``make run`` / ``make run-scaled`` do,
with its own ``--var`` and free ports given through the ``TRANSMUTE_*_PORT`` variables, and finds
its processes in ``pids.json``. Timing is the test's own: the inputs trickle from the origin's slow
path (about 4 s each), so the kills land while tasks are being fetched (three in flight on two
workers of concurrency 2: each worker holds one), never by hoping a sleep was long enough.

Run alone with ``pytest -m faults``. Everything stays on loopback; every process is stopped at the end.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from stack import PIDS_FILE, free_port
from tests.conftest import TERMINAL
from tests.support import Corpus, Origin

pytestmark = [pytest.mark.faults, pytest.mark.timeout(480)]  # a pass takes about 2 minutes

REPO = Path(__file__).resolve().parents[2]
TASKS = 20
READY_S = 180.0  # ten processes, a 3-node cluster, the sample clip made and uploaded
BACK_S = 90.0  # a killed process restarted (and a nats node back in the cluster)
STOP_S = 60.0
RETRY_S = 60.0  # how long one read may keep meeting 503/504 while the cluster fails over


class LocalStack:
    """``python -m stack --var <var> <flags>`` with its output in ``<var>/stdout.log``."""

    def __init__(self, var: Path, *flags: str) -> None:
        self.var = var
        self.root = var / "scaled" if "--scaled" in flags else var
        self.api_key = "ittybit_local_" + secrets.token_hex(8)
        self.http_port = free_port()
        ports = {
            "TRANSMUTE_HTTP_PORT": self.http_port,
            "TRANSMUTE_GRPC_PORT": free_port(),
            "TRANSMUTE_INTELLIGENCE_PORT": free_port(),
            "TRANSMUTE_TRACKS_PORT": free_port(),
            "TRANSMUTE_ENVOY_GRPC_PORT": free_port(),
            "TRANSMUTE_ENVOY_ADMIN_PORT": free_port(),
        }
        if "--scaled" not in flags:  # the scaled stack picks its nats ports itself
            ports["TRANSMUTE_NATS_PORT"] = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRANSMUTE_")}
        env.update({name: str(port) for name, port in ports.items()}, TRANSMUTE_API_KEY=self.api_key)
        var.mkdir(parents=True, exist_ok=True)
        self._stdout = var / "stdout.log"
        with self._stdout.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "stack", "--var", str(var), *flags],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def output(self) -> str:
        return self._stdout.read_text(errors="replace")

    def pids(self) -> dict[str, int]:
        path = self.root / PIDS_FILE
        return json.loads(path.read_text()) if path.exists() else {}

    def wait_for(self, what: str, done: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {timeout:g} s\n{self.output()[-6000:]}")
            time.sleep(0.2)

    def wait_ready(self) -> None:
        def ready() -> bool:
            assert self.proc.poll() is None, f"python -m stack exited during start-up\n{self.output()}"
            return "Transmute is running at" in self.output()

        self.wait_for("python -m stack started", ready, READY_S)

    def restarted(self, name: str, old_pid: int) -> Callable[[], bool]:
        """Whether ``name`` runs again under a new pid (a nats node: back in the cluster)."""

        def check() -> bool:
            pid = self.pids()[name]
            return pid != old_pid and alive(pid) and f"{name} restarted (pid {pid})" in self.output()

        return check

    def respawned(self, old_pid: int) -> Callable[[], bool]:
        """Whether the gateway has a new pid, or the stack has stopped."""
        return lambda: self.proc.poll() is not None or self.pids()["gateway"] != old_pid

    def client(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.api_key}"}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30.0)

    def stop(self) -> int:
        """SIGTERM, as Ctrl-C would; its exit code. SIGKILLs what is left if it does not stop."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=STOP_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            for pid in self.pids().values():  # its children run in sessions of their own
                _kill_group(pid)
            raise


@contextmanager
def local_stack(var: Path, *flags: str) -> Iterator[LocalStack]:
    stack = LocalStack(var, *flags)
    try:
        stack.wait_ready()
        yield stack
    finally:
        stack.stop()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def read_task(api: httpx.Client, task_id: str) -> dict[str, Any]:
    """GET a task as the README tells clients to: a 503 or 504 (the gateway's deadline passed while
    JetStream elected a new leader) or a dropped connection is retried after ``Retry-After``."""
    deadline = time.monotonic() + RETRY_S
    while True:
        try:
            response = api.get(f"/tasks/{task_id}")
            if response.status_code not in (502, 503, 504):
                response.raise_for_status()
                return response.json()  # type: ignore[no-any-return]
            wait = float(response.headers.get("Retry-After", "0.5"))
        except httpx.TransportError:
            wait = 0.5
        assert time.monotonic() < deadline, f"GET /tasks/{task_id} kept failing for {RETRY_S:g} s"
        time.sleep(wait)


def statuses(api: httpx.Client, ids: list[str]) -> list[str]:
    return [read_task(api, task_id)["status"] for task_id in ids]


def wait_all(api: httpx.Client, ids: list[str], timeout: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    done: dict[str, dict[str, Any]] = {}
    while len(done) < len(ids):
        for task_id in (i for i in ids if i not in done):
            task = read_task(api, task_id)
            if task["status"] in TERMINAL:
                done[task_id] = task
        assert time.monotonic() < deadline, f"unfinished after {timeout:g} s: {set(ids) - set(done)}"
        time.sleep(0.2)
    return [done[task_id] for task_id in ids]


def test_a_nats_node_and_a_media_worker_killed_mid_task_come_back_and_every_task_succeeds(
    tmp_path: Path, origin: Origin, corpus: Corpus
) -> None:
    size = corpus.png_small.stat().st_size
    url = origin.slow_url(corpus.png_small.name, chunk=max(1, size // 20), delay=0.2)
    body = {"kind": "image", "url": url, "options": {"width": 16}}
    with local_stack(tmp_path / "var", "--scaled", "--media-only") as stack, stack.client() as api:
        created = [api.post("/tasks", json=body) for _ in range(TASKS)]
        assert [r.status_code for r in created] == [201] * TASKS, [r.text for r in created]
        ids = [r.json()["id"] for r in created]
        # Each worker runs two tasks at most: three started means both hold one.
        started = {"validating", "processing", "finishing"}
        stack.wait_for(
            "three tasks in flight", lambda: sum(s in started for s in statuses(api, ids)) >= 3, 60.0
        )
        before = stack.pids()
        victims = ("nats-3", "media-worker-1")
        for name in victims:
            os.kill(before[name], signal.SIGKILL)
        assert [s for s in statuses(api, ids) if s not in TERMINAL], "tasks were in flight at the kill"

        for name in victims:
            stack.wait_for(f"{name} restarted", stack.restarted(name, before[name]), BACK_S)
        done = wait_all(api, ids, timeout=240.0)
        assert [t["status"] for t in done] == ["succeeded"] * TASKS, done

        output = stack.output()
        for name in victims:
            said = f"{name} exited with code -9; restarting it in 0.5 s (1st restart in the last 60 s"
            assert said in output, output[-6000:]
        assert set(stack.pids()) == set(before)
        stack.wait_for("every process running", lambda: all(map(alive, stack.pids().values())), BACK_S)
        assert stack.proc.poll() is None
        assert "stopping" not in output
    assert stack.proc.returncode == 0, stack.output()[-6000:]


def test_a_process_that_keeps_crashing_is_given_up_on_and_the_stack_exits_1(tmp_path: Path) -> None:
    with local_stack(tmp_path / "var", "--media-only") as stack:
        kills = 0
        while stack.proc.poll() is None and kills < 10:
            pid = stack.pids()["gateway"]
            os.kill(pid, signal.SIGKILL)
            kills += 1
            # The next kill may land while it starts: an exit all the same.
            stack.wait_for("the gateway started again, or the stack stopped", stack.respawned(pid), BACK_S)
        code = stack.proc.wait(timeout=STOP_S)
        left = [name for name, pid in stack.pids().items() if alive(pid)]
    output = stack.output()
    assert code == 1, output
    assert kills == 6, output  # five restarts, then the sixth exit within 60 s is one too many
    assert (
        "gateway exited with code -9, its 6th exit in the last 60 s; giving up on it"
        f" (see {stack.root / 'logs' / 'gateway.log'})"
    ) in output, output
    assert "stopped because gateway kept crashing" in output
    assert left == [], left
