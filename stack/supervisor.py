"""Keeps the processes of ``python -m stack`` running, as Kubernetes keeps a Deployment's pods: a
process that died is started again as it was (same argv, port and settings: ``Stack.restart``),
after the delay ``stack.restarts`` gives, and said so on stdout and in that process's own log. A
process that keeps crashing is given up on with a message naming it and its log, and then the
whole stack stops: a cluster that cannot heal itself should say so, not limp on.

Only ``python -m stack`` runs a supervisor. Tests and benchmarks kill, pause and restart their
stack's processes on purpose and assert what follows, so a supervisor there would fight them.

It runs on the main thread, between polls: ``stop()`` (safe to call from a signal handler) is
seen at the next poll, or once a restart under way has finished waiting for its port.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from stack.restarts import GiveUp, RestartPolicy, decide, ordinal

log = logging.getLogger("stack")

_POLL_S = 0.2


class Supervised(Protocol):
    """What the supervisor needs of a stack (``Stack`` is one)."""

    procs: dict[str, subprocess.Popen[bytes]]

    def restart(self, name: str) -> None: ...

    def log_path(self, name: str) -> Path: ...


class Supervisor:
    def __init__(
        self,
        stack: Supervised,
        policy: RestartPolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        poll_s: float = _POLL_S,
    ) -> None:
        self._stack = stack
        self._policy = policy or RestartPolicy()
        self._clock = clock
        self._poll_s = poll_s
        self._exits: dict[str, list[float]] = {}  # when each process exited, oldest first
        self._due: dict[str, float] = {}  # processes waiting to be restarted, and when
        self._stopping = False

    def stop(self) -> None:
        """Ask ``run()`` to return (a signal handler may call it)."""
        self._stopping = True

    def run(self) -> str | None:
        """Watch and restart until ``stop()``; the name of the process given up on, if one was."""
        while not self._stopping:
            given_up = self.check()
            if given_up is not None:
                return given_up
            time.sleep(self._poll_s)
        return None

    def check(self) -> str | None:
        """One pass: note every process that exited since the last one, restart those whose delay
        is over. The name of a process given up on, if any."""
        for name, proc in list(self._stack.procs.items()):
            if name not in self._due and proc.poll() is not None and self._exited(name, proc):
                return name
        for name, due in list(self._due.items()):
            if self._stopping:
                break
            if due <= self._clock():
                self._restart(name)
        return None

    def _exited(self, name: str, proc: subprocess.Popen[bytes]) -> bool:
        """Record one exit and schedule its restart; True when the process is given up on."""
        _end_group(proc.pid)  # what it started dies with it, as a container's processes do
        now = self._clock()
        exits = self._exits.setdefault(name, [])
        exits.append(now)
        decision = decide(exits, now, self._policy)
        path = self._stack.log_path(name)
        window = f"{self._policy.window_s:g} s"
        if isinstance(decision, GiveUp):
            log.error(
                "%s exited with code %s, its %s exit in the last %s; giving up on it (see %s)",
                name, proc.returncode, ordinal(decision.exits), window, path,
            )  # fmt: skip
            _note(path, f"exited with code {proc.returncode}; given up on, the stack stops")
            return True
        log.warning(
            "%s exited with code %s; restarting it in %g s (%s restart in the last %s; see %s)",
            name, proc.returncode, decision.delay_s, ordinal(decision.exits), window, path,
        )  # fmt: skip
        _note(path, f"exited with code {proc.returncode}; restarting it in {decision.delay_s:g} s")
        self._due[name] = now + decision.delay_s
        return False

    def _restart(self, name: str) -> None:
        del self._due[name]
        try:
            self._stack.restart(name)
        except RuntimeError as exc:  # it exited again while starting, or a nats node did not rejoin
            log.warning("%s did not come back: %s", name, exc)
            return
        log.info("%s restarted (pid %s)", name, self._stack.procs[name].pid)


def _end_group(pid: int) -> None:
    """SIGKILL what is left of a dead process's group (an ffmpeg a worker ran, say)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _note(path: Path, line: str) -> None:
    """One line in the process's own log, so its file shows where one run ends and the next begins."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as log_file:
        log_file.write(f"--- python -m stack: {line} ---\n")
