"""The server's side of a bench's tasks: what the stack's own processes used and logged.

CPU seconds of each process (its ffmpeg children included) from /proc, and per-phase timestamps of
each task (created, started, finished) from a service's JSON log.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from stack import Stack


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
