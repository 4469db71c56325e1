"""The ffmpeg runner: pure progress parsing, and real ffmpeg runs for success, failure and every kill path."""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from taskkit.errors import Cancelled, InputError, Unavailable
from taskkit.media import run_ffmpeg
from taskkit.media.ffmpeg import FfmpegError, ProgressTracker, StderrTail, _ffmpeg_env, parse_progress_line

FFMPEG = shutil.which("ffmpeg") or "ffmpeg"
BASE = [FFMPEG, "-hide_banner", "-nostdin", "-y", "-loglevel", "error"]
# Read at native rate so that the run lasts ten minutes, whatever the machine's speed.
ENDLESS = [*BASE, "-re", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25:duration=600", "-f", "null", "-"]

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")


# --- pure parsing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("out_time_us=40000\n", ("out_time_us", "40000")),
        ("progress=end", ("progress", "end")),
        ("speed= 297x", ("speed", "297x")),
        ("bitrate=N/A", ("bitrate", "N/A")),
        ("", None),
        ("no separator", None),
        ("=value", None),
    ],
)
def test_parse_progress_line(line: str, expected: tuple[str, str] | None) -> None:
    assert parse_progress_line(line) == expected


def test_tracker_reports_each_rise_once_and_caps_at_99_until_finish() -> None:
    tracker = ProgressTracker(10.0)
    assert tracker.feed("out_time_us", "N/A") is None
    assert tracker.feed("out_time_us", "-23220") is None
    assert tracker.feed("out_time_us", "2500000") == 25
    assert tracker.feed("out_time_ms", "2500000") is None  # same position, microseconds too
    assert tracker.feed("out_time", "00:00:05.000000") == 50
    assert tracker.feed("out_time_us", "4000000") is None  # never goes back
    assert tracker.feed("frame", "250") is None
    assert tracker.feed("out_time_us", "10000000") == 99
    assert tracker.feed("out_time_us", "12000000") is None
    assert tracker.feed("progress", "end") is None
    assert tracker.finish() == 100
    assert tracker.finish() is None


def test_tracker_parses_long_clock_values() -> None:
    tracker = ProgressTracker(7200.0)
    assert tracker.feed("out_time", "01:00:00.000000") == 50
    assert tracker.feed("out_time", "garbage") is None
    assert tracker.feed("out_time", "1:2") is None


@pytest.mark.parametrize("duration", [None, 0.0, -1.0, float("nan"), float("inf")])
def test_tracker_without_a_usable_duration_reports_only_the_final_100(duration: float | None) -> None:
    tracker = ProgressTracker(duration)
    assert tracker.feed("out_time_us", "5000000") is None
    assert tracker.feed("progress", "end") is None
    assert tracker.finish() == 100


def test_stderr_tail_is_bounded_and_finds_the_reason() -> None:
    tail = StderrTail(max_lines=3, max_chars=50)
    for i in range(10):
        tail.add(f"line {i}\n")
    assert tail.text == "line 7\nline 8\nline 9"
    tail.add("x" * 200)
    assert tail.text == "x" * 50

    tail = StderrTail()
    tail.add("[libx264 @ 0x563bc01e4600] Error setting preset")
    tail.add("Conversion failed!")
    tail.add("   ")
    assert tail.reason() == "libx264: Error setting preset"
    assert StderrTail().reason() is None


# --- real ffmpeg --------------------------------------------------------------------------------


class Spawned(list[asyncio.subprocess.Process]):
    """The processes the runner started, plus the argv and options each was started with."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []


@pytest.fixture
def spawned(monkeypatch: pytest.MonkeyPatch) -> Spawned:
    """Record every process the runner starts, so tests can check that its group is gone."""
    procs = Spawned()
    original = asyncio.create_subprocess_exec

    async def recording(*args: Any, **kwargs: Any) -> asyncio.subprocess.Process:
        procs.calls.append((args, kwargs))
        proc = await original(*args, **kwargs)
        procs.append(proc)
        return proc

    monkeypatch.setattr(asyncio, "create_subprocess_exec", recording)
    return procs


def assert_group_gone(procs: list[asyncio.subprocess.Process]) -> None:
    assert len(procs) == 1
    proc = procs[0]
    assert proc.returncode is not None, "the child was not reaped"
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)


async def wait_until_running(procs: list[asyncio.subprocess.Process]) -> None:
    for _ in range(100):
        if procs:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)  # let ffmpeg get into its encode loop
    assert procs and procs[0].returncode is None


@needs_ffmpeg
async def test_real_encode_reports_rising_progress_ending_at_100(tmp_path: Path, spawned: Spawned) -> None:
    out = tmp_path / "out.mp4"
    argv = [*BASE, "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25:duration=3", "-pix_fmt", "yuv420p"]
    seen: list[int] = []

    async def on_progress(percent: int) -> None:
        seen.append(percent)

    await run_ffmpeg([*argv, str(out)], duration=3.0, on_progress=on_progress, timeout=30)

    assert out.stat().st_size > 0
    assert seen and seen[-1] == 100
    assert all(a < b for a, b in itertools.pairwise(seen))
    assert all(0 < p <= 99 for p in seen[:-1])
    assert spawned[0].returncode == 0
    args, options = spawned.calls[0]
    start = args.index(shutil.which(FFMPEG))
    assert args[start + 1 : start + 5] == ("-progress", "pipe:1", "-nostats", "-hide_banner")
    if shutil.which("setpriv"):  # ffmpeg is killed by the kernel if the worker dies
        assert args[:start] == (shutil.which("setpriv"), "--pdeathsig", "KILL", "--")
    assert options["start_new_session"] is True
    assert options["stdin"] == asyncio.subprocess.DEVNULL


@needs_ffmpeg
async def test_unknown_duration_reports_only_100(tmp_path: Path) -> None:
    seen: list[int] = []

    async def on_progress(percent: int) -> None:
        seen.append(percent)

    argv = [*BASE, "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25:duration=1", "-f", "null", "-"]
    await run_ffmpeg(argv, duration=None, on_progress=on_progress, timeout=30)
    assert seen == [100]


@needs_ffmpeg
async def test_failure_raises_a_short_message_with_ffmpeg_reason(tmp_path: Path, spawned: Spawned) -> None:
    missing = tmp_path / "missing.mp4"
    argv = [*BASE, "-i", str(missing), str(tmp_path / "out.mp4")]

    with pytest.raises(FfmpegError) as caught:
        await run_ffmpeg(argv, duration=3.0, on_progress=None, timeout=30)

    error = caught.value
    assert isinstance(error, InputError) and error.kind == "input_invalid"
    assert error.message == "ffmpeg failed: missing.mp4: No such file or directory"
    assert str(tmp_path) not in error.message
    assert str(missing) in error.stderr_tail
    assert error.returncode != 0
    assert_group_gone(spawned)


@needs_ffmpeg
async def test_encoder_failure_message_is_one_short_line(tmp_path: Path) -> None:
    argv = [*BASE, "-f", "lavfi", "-i", "testsrc=duration=1", "-c:v", "libx264", "-preset", "nosuch"]
    with pytest.raises(FfmpegError) as caught:
        await run_ffmpeg([*argv, str(tmp_path / "o.mp4")], duration=1.0, on_progress=None, timeout=30)
    message = caught.value.message
    assert message.startswith("ffmpeg failed: ")
    assert "\n" not in message and len(message) <= 300
    assert "Conversion failed!" not in message
    assert "preset" in caught.value.stderr_tail


@needs_ffmpeg
async def test_cancel_event_kills_the_group_quickly(spawned: Spawned) -> None:
    cancel = asyncio.Event()
    run = asyncio.create_task(
        run_ffmpeg(ENDLESS, duration=600.0, on_progress=None, timeout=60, cancel=cancel)
    )
    await wait_until_running(spawned)

    started = time.monotonic()
    cancel.set()
    with pytest.raises(Cancelled) as caught:
        await run
    assert time.monotonic() - started < 2.0
    assert caught.value.message == "the task was cancelled"
    assert_group_gone(spawned)


async def test_cancel_already_set_starts_nothing(spawned: Spawned) -> None:
    cancel = asyncio.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        await run_ffmpeg(ENDLESS, duration=600.0, on_progress=None, timeout=60, cancel=cancel)
    assert spawned == []


@needs_ffmpeg
async def test_timeout_kills_the_group(spawned: Spawned) -> None:
    started = time.monotonic()
    with pytest.raises(InputError) as caught:
        await run_ffmpeg(ENDLESS, duration=600.0, on_progress=None, timeout=0.5)
    assert time.monotonic() - started < 2.5
    assert not isinstance(caught.value, FfmpegError)
    assert caught.value.message == "processing took longer than the limit of 0.5 seconds"
    assert_group_gone(spawned)


@needs_ffmpeg
async def test_caller_task_cancellation_kills_the_group_and_propagates(
    spawned: Spawned,
) -> None:
    run = asyncio.create_task(run_ffmpeg(ENDLESS, duration=600.0, on_progress=None, timeout=60))
    await wait_until_running(spawned)

    started = time.monotonic()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert time.monotonic() - started < 2.0
    assert_group_gone(spawned)


@needs_ffmpeg
async def test_failing_progress_callback_kills_the_group(spawned: Spawned) -> None:
    async def on_progress(percent: int) -> None:
        raise RuntimeError("progress store is down")

    with pytest.raises(RuntimeError, match="progress store is down"):
        await run_ffmpeg(ENDLESS, duration=2.0, on_progress=on_progress, timeout=60)
    assert_group_gone(spawned)


async def test_missing_binary_is_unavailable(tmp_path: Path) -> None:
    argv = [str(tmp_path / "no-ffmpeg"), "-i", "x", "y"]
    with pytest.raises(Unavailable, match="ffmpeg could not be started"):
        await run_ffmpeg(argv, duration=None, on_progress=None, timeout=5)


def test_ffmpeg_gets_no_secrets_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRANSMUTE_SIGNING_SECRET", "do-not-leak")
    env = _ffmpeg_env(tmp_path)
    assert set(env) == {"PATH", "LANG", "HOME", "SVT_LOG"} and env["HOME"] == str(tmp_path)
