"""``python -m stack`` restarts what dies: the backoff and give-up policy as pure functions over exit
times, then the supervisor's loop over real (tiny, crashing) processes with a fast policy."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from stack.restarts import GiveUp, Restart, RestartPolicy, decide, ordinal
from stack.supervisor import Supervisor

POLICY = RestartPolicy()  # 0.5 s doubling to 10 s; more than 5 exits within 60 s: give up
FAST = RestartPolicy(first_delay_s=0.01, max_delay_s=0.05, max_exits=3, window_s=60.0)
CRASH = [sys.executable, "-c", "import sys; sys.exit(3)"]
RUN = [sys.executable, "-c", "import time; time.sleep(60)"]


def test_each_exit_within_the_window_doubles_the_delay_until_the_sixth_gives_up() -> None:
    exits: list[float] = []
    decisions = []
    for now in (0.0, 1.0, 3.0, 7.0, 15.0, 30.0):
        exits.append(now)
        decisions.append(decide(exits, now, POLICY))
    assert decisions == [
        Restart(0.5, 1), Restart(1.0, 2), Restart(2.0, 3), Restart(4.0, 4), Restart(8.0, 5), GiveUp(6),
    ]  # fmt: skip


def test_exits_older_than_the_window_are_forgotten() -> None:
    exits = [0.0, 1.0, 2.0, 3.0, 4.0, 100.0]
    assert decide(exits, 100.0, POLICY) == Restart(0.5, 1)
    assert decide([*exits[:5], 60.5], 60.5, POLICY) == Restart(8.0, 5)  # the exit at 0 s is out


def test_the_delay_is_capped() -> None:
    patient = RestartPolicy(max_exits=20)
    exits = [float(i) for i in range(8)]
    assert decide(exits, 7.0, patient) == Restart(10.0, 8)


def test_ordinals() -> None:
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th",
    ]  # fmt: skip


class Processes:
    """A stand-in for ``Stack``: each name runs its argvs in turn, one per (re)start, the last
    one again once they run out."""

    def __init__(self, root: Path, argvs: dict[str, list[list[str]]]) -> None:
        self.root = root
        self.argvs = argvs
        self.starts: dict[str, int] = dict.fromkeys(argvs, 0)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        for name in argvs:
            self._start(name)

    def _start(self, name: str) -> None:
        runs = self.argvs[name]
        argv = runs[min(self.starts[name], len(runs) - 1)]
        self.starts[name] += 1
        self.procs[name] = subprocess.Popen(argv, start_new_session=True)

    def restart(self, name: str) -> None:
        self.procs[name].wait()
        self._start(name)

    def log_path(self, name: str) -> Path:
        return self.root / f"{name}.log"

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.kill()
            proc.wait()


@pytest.fixture
def caplog_stack(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="stack")
    return caplog


def test_a_process_that_died_is_restarted_and_said_so(
    tmp_path: Path, caplog_stack: pytest.LogCaptureFixture
) -> None:
    stack = Processes(tmp_path, {"media-worker-1": [CRASH, RUN], "steady": [RUN]})
    supervisor = Supervisor(stack, FAST, poll_s=0.01)
    try:
        stack.procs["media-worker-1"].wait()
        assert supervisor.check() is None  # the exit is noticed, its restart is due in 10 ms
        while stack.starts["media-worker-1"] < 2:
            assert supervisor.check() is None
        assert stack.procs["media-worker-1"].poll() is None
        assert stack.starts == {"media-worker-1": 2, "steady": 1}
    finally:
        stack.stop()
    messages = [record.getMessage() for record in caplog_stack.records]
    said = "media-worker-1 exited with code 3; restarting it in 0.01 s (1st restart in the last 60 s"
    assert any(m.startswith(said) for m in messages), messages
    assert "exited with code 3; restarting it" in stack.log_path("media-worker-1").read_text()


def test_a_process_that_keeps_crashing_is_given_up_on(
    tmp_path: Path, caplog_stack: pytest.LogCaptureFixture
) -> None:
    stack = Processes(tmp_path, {"nats-3": [CRASH], "steady": [RUN]})
    try:
        assert Supervisor(stack, FAST, poll_s=0.01).run() == "nats-3"
        assert stack.starts == {"nats-3": 4, "steady": 1}  # three restarts, then no fourth
    finally:
        stack.stop()
    last = caplog_stack.records[-1]
    assert last.levelno == logging.ERROR
    assert last.getMessage() == (
        "nats-3 exited with code 3, its 4th exit in the last 60 s; giving up on it"
        f" (see {tmp_path / 'nats-3.log'})"
    )


def test_stop_ends_the_watch(tmp_path: Path) -> None:
    stack = Processes(tmp_path, {"steady": [RUN]})
    supervisor = Supervisor(stack, FAST, poll_s=0.01)
    supervisor.stop()
    try:
        assert supervisor.run() is None
    finally:
        stack.stop()
