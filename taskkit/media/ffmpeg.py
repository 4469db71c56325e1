"""The one runner that executes every ffmpeg argv.

Argv lists are built elsewhere by pure functions; this module owns everything that touches the live
process: progress reporting, stderr capture, cancellation, the time limit and cleanup. ffmpeg runs in
its own process group so that a kill reaches anything it started, and every exit path kills the group
and reaps the child, so no ffmpeg outlives the task that started it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import re
import shutil
import signal
import sys
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from taskkit.errors import Cancelled, InputError, Unavailable
from taskkit.media.sandbox import Identity

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int], Awaitable[None]]

_TAIL_MAX_LINES = 20
_TAIL_MAX_CHARS = 4096
_MESSAGE_MAX_CHARS = 300
_READ_CHUNK = 4096

# Closing lines ffmpeg prints after the real reason; they say nothing about what went wrong.
_GENERIC_LINES = frozenset({"Conversion failed!"})
# "[libx264 @ 0x563bc01e4600] msg" -> "libx264: msg": the address is noise to a user.
_CONTEXT_PREFIX = re.compile(r"^\[([^\]@]+?) @ 0x[0-9a-fA-F]+\]\s*")


class FfmpegError(InputError):
    """ffmpeg exited non-zero.

    An InputError because the argv came from validated options and the input was probed before the
    run: when ffmpeg still fails, the same input would fail the same way again, so retrying is waste.
    ``message`` is one short sentence for the task's error; ``stderr_tail`` and ``returncode`` are for
    logs.
    """

    def __init__(self, message: str, *, returncode: int, stderr_tail: str) -> None:
        super().__init__(message)
        self.returncode = returncode
        self.stderr_tail = stderr_tail


def parse_progress_line(line: str) -> tuple[str, str] | None:
    """Split one line of ffmpeg's ``-progress`` output into ``(key, value)``; None if it is not one."""
    key, sep, value = line.strip().partition("=")
    key = key.strip()
    if not sep or not key:
        return None
    return key, value.strip()


def _clock_seconds(value: str) -> float | None:
    """Parse ``[-]HH:MM:SS.ffffff`` as ffmpeg writes ``out_time``."""
    sign = -1.0 if value.startswith("-") else 1.0
    parts = value.lstrip("-").split(":")
    if len(parts) != 3:
        return None
    try:
        hours, minutes, seconds = int(parts[0]), int(parts[1]), float(parts[2])
    except ValueError:
        return None
    return sign * (hours * 3600 + minutes * 60 + seconds)


def _out_time_seconds(key: str, value: str) -> float | None:
    """The output position a progress key reports, in seconds, or None if it reports none.

    ``out_time_ms`` is in microseconds too: ffmpeg has always printed the same number for both keys.
    Values are ``N/A`` until the first frame and may be slightly negative at the start.
    """
    if key in ("out_time_us", "out_time_ms"):
        try:
            return int(value) / 1_000_000
        except ValueError:
            return None
    if key == "out_time":
        return _clock_seconds(value)
    return None


class ProgressTracker:
    """Turns ffmpeg's progress keys into a rising integer percent, 0..100.

    Before the process exits the percent is capped at 99: ffmpeg may still fail while writing the
    trailer, and a task must never read 100 and then fail. ``finish()`` gives the 100 once the caller
    knows the run succeeded. With no known duration there is nothing to measure against, so only the
    final 100 is ever reported.
    """

    def __init__(self, duration: float | None) -> None:
        usable = duration is not None and math.isfinite(duration) and duration > 0
        self._duration = duration if usable else None
        self.percent = 0

    def feed(self, key: str, value: str) -> int | None:
        """Take one progress key/value; return the new percent when it rose, else None."""
        if self._duration is None:
            return None
        seconds = _out_time_seconds(key, value)
        if seconds is None:
            return None
        return self._rise_to(min(99, max(0, int(seconds * 100 / self._duration))))

    def finish(self) -> int | None:
        """Mark the run successful; return 100 unless it was already reported."""
        return self._rise_to(100)

    def _rise_to(self, percent: int) -> int | None:
        if percent <= self.percent:
            return None
        self.percent = percent
        return percent


class StderrTail:
    """The last lines of a stream, bounded in both line count and size, whatever the stream sends."""

    def __init__(self, max_lines: int = _TAIL_MAX_LINES, max_chars: int = _TAIL_MAX_CHARS) -> None:
        self._lines: deque[str] = deque(maxlen=max_lines)
        self._max_chars = max_chars

    def add(self, line: str) -> None:
        line = line.rstrip()[-self._max_chars :]
        if line:
            self._lines.append(line)
        while len(self._lines) > 1 and sum(len(item) for item in self._lines) > self._max_chars:
            self._lines.popleft()

    @property
    def text(self) -> str:
        return "\n".join(self._lines)

    def reason(self) -> str | None:
        """The last line that says what went wrong, skipping ffmpeg's generic closing lines."""
        for line in reversed(self._lines):
            if line.strip() not in _GENERIC_LINES:
                return _CONTEXT_PREFIX.sub(r"\1: ", line.strip())
        return None


async def _lines(stream: asyncio.StreamReader) -> AsyncIterator[str]:
    """Yield decoded lines, reading in chunks so that no line length can overrun a buffer limit."""
    pending = b""
    while chunk := await stream.read(_READ_CHUNK):
        pending += chunk
        *complete, pending = re.split(rb"\r\n|\r|\n", pending)
        for raw in complete:
            yield raw.decode("utf-8", "replace")
        pending = pending[-_TAIL_MAX_CHARS:]
    if pending:
        yield pending.decode("utf-8", "replace")


async def _pump_progress(
    stream: asyncio.StreamReader, tracker: ProgressTracker, on_progress: ProgressCallback | None
) -> None:
    async for line in _lines(stream):
        parsed = parse_progress_line(line)
        if parsed is None:
            continue
        percent = tracker.feed(*parsed)
        if percent is not None and on_progress is not None:
            await on_progress(percent)


async def _pump_tail(stream: asyncio.StreamReader, tail: StderrTail) -> None:
    async for line in _lines(stream):
        tail.add(line)


def _failure_message(returncode: int, tail: StderrTail, argv: list[str]) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = str(-returncode)
        message = f"ffmpeg was killed by signal {name}"
    else:
        reason = tail.reason()
        message = f"ffmpeg failed: {reason}" if reason else f"ffmpeg failed with exit code {returncode}"
    # Paths are the worker's temp files: the user knows them by name only.
    for arg in sorted(argv[1:], key=len, reverse=True):
        if os.path.isabs(arg) and len(arg) > 1:
            message = message.replace(arg, os.path.basename(arg) or arg)
    if len(message) > _MESSAGE_MAX_CHARS:
        message = message[: _MESSAGE_MAX_CHARS - 3].rstrip() + "..."
    return message


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    """SIGKILL ffmpeg's whole process group; its pgid is its pid because it leads its own session."""
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _ffmpeg_env(cwd: Path | None) -> dict[str, str]:
    """ffmpeg gets no secret from the worker's environment (signing secret, keys): PATH, a locale,
    HOME in its work dir (fontconfig's cache), and SVT_LOG=1 (libsvtav1 logs to stderr regardless
    of -loglevel; 1 keeps only its errors)."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "HOME": str(cwd) if cwd is not None else "/nonexistent",
        "SVT_LOG": "1",
    }


# ffmpeg runs in its own process group (so a cancel can kill the group), which also means a worker
# killed outright would leave it running as an orphan. util-linux's setpriv asks the kernel to
# SIGKILL it when the worker dies. (A preexec_fn calling prctl would force a fork() with Python
# code in the child, which grpc's fork handlers in a threaded process turn into SIGABRTs.)
_SETPRIV = shutil.which("setpriv") if sys.platform.startswith("linux") else None


def _wrapper(identity: Identity | None) -> list[str]:
    """``setpriv`` to die with the worker and, with a sandbox identity, to drop to its uid."""
    if _SETPRIV is None:
        if identity is not None:
            raise Unavailable("ffmpeg could not be sandboxed: setpriv was not found")
        return []
    return [_SETPRIV, "--pdeathsig", "KILL", *(identity.setpriv_args() if identity else []), "--"]


async def run_ffmpeg(
    argv: list[str],
    *,
    duration: float | None,
    on_progress: ProgressCallback | None,
    timeout: float,  # noqa: ASYNC109 - the limit ends in a kill and a domain error, not a bare TimeoutError
    cancel: asyncio.Event | None = None,
    cwd: Path | None = None,
    identity: Identity | None = None,
) -> None:
    """Run one ffmpeg argv to completion, reporting progress; raise a domain error if it does not succeed.

    ffmpeg runs in ``cwd`` (the task's work dir) and, given a sandbox ``identity``, as that uid.

    ``duration`` is the expected output length in seconds (None when unknown); ``on_progress`` gets
    each rise of the integer percent and a final 100 after a successful exit. Raises ``FfmpegError``
    on a non-zero exit, ``Cancelled`` when ``cancel`` is set, ``InputError`` when ``timeout`` seconds
    pass, and ``Unavailable`` when the ffmpeg binary cannot be started. On every exit path the process
    group is dead and the child reaped; a CancelledError of the calling task is re-raised after that.
    """
    if cancel is not None and cancel.is_set():
        raise Cancelled("the task was cancelled")
    binary = shutil.which(argv[0])
    if binary is None:
        # A missing binary is the deployment's fault, not the input's (checked here because
        # setpriv, not us, would be the one failing to exec it).
        raise Unavailable(f"ffmpeg could not be started: {argv[0]} was not found")
    full_argv = [binary, "-progress", "pipe:1", "-nostats", *argv[1:]]
    try:
        proc = await asyncio.create_subprocess_exec(
            *_wrapper(identity),
            *full_argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            cwd=cwd,
            env=_ffmpeg_env(cwd),
        )
    except OSError as exc:
        # A missing or unusable binary is the deployment's fault, not the input's.
        raise Unavailable(f"ffmpeg could not be started: {exc.strerror or exc}") from None
    logger.debug("ffmpeg started", extra={"pid": proc.pid, "argv": full_argv})

    assert proc.stdout is not None and proc.stderr is not None
    tracker = ProgressTracker(duration)
    tail = StderrTail()
    work = [
        asyncio.create_task(_pump_progress(proc.stdout, tracker, on_progress)),
        asyncio.create_task(_pump_tail(proc.stderr, tail)),
        asyncio.create_task(proc.wait()),
    ]
    watchers = list(work)
    cancel_wait = asyncio.create_task(cancel.wait()) if cancel is not None else None
    if cancel_wait is not None:
        watchers.append(cancel_wait)
    try:
        await _supervise(work, cancel_wait, watchers, timeout, proc.pid)
    finally:
        _kill_group(proc)
        for task in watchers:
            task.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
        await proc.wait()

    returncode = proc.returncode
    assert returncode is not None
    if returncode != 0:
        error = FfmpegError(
            _failure_message(returncode, tail, full_argv), returncode=returncode, stderr_tail=tail.text
        )
        logger.info(
            "ffmpeg failed", extra={"pid": proc.pid, "returncode": returncode, "stderr_tail": tail.text}
        )
        raise error
    percent = tracker.finish()
    if percent is not None and on_progress is not None:
        await on_progress(percent)


async def _supervise(
    work: list[asyncio.Task],
    cancel_wait: asyncio.Task | None,
    watchers: list[asyncio.Task],
    limit: float,
    pid: int,
) -> None:
    """Wait until the process has exited and both pipes are drained, or until cancel or the deadline.

    Returning normally means the run is over; the caller still kills and reaps on every path.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not all(task.done() for task in work):
        remaining = deadline - loop.time()
        if remaining <= 0:
            logger.info("ffmpeg timed out; killing its process group", extra={"pid": pid})
            raise InputError(f"processing took longer than the limit of {limit:g} seconds")
        pending = [task for task in watchers if not task.done()]
        await asyncio.wait(pending, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
        if cancel_wait is not None and cancel_wait.done():
            logger.info("task cancelled; killing ffmpeg's process group", extra={"pid": pid})
            raise Cancelled("the task was cancelled")
        for task in work:
            if task.done():
                # Re-raises a failure of on_progress or of reading a pipe.
                task.result()
