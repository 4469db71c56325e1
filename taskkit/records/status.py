"""Task status names and the monotonic lifecycle rule.

waiting → queued → validating → processing → finishing → succeeded | failed | cancelled.
A status may only move forward, and a terminal status is final; the task store enforces this
on every write so a late progress tick can never resurrect a cancelled task.
"""

from __future__ import annotations

from transmute.tasks.v1 import tasks_pb2

WAITING = tasks_pb2.TASK_STATUS_WAITING
QUEUED = tasks_pb2.TASK_STATUS_QUEUED
VALIDATING = tasks_pb2.TASK_STATUS_VALIDATING
PROCESSING = tasks_pb2.TASK_STATUS_PROCESSING
FINISHING = tasks_pb2.TASK_STATUS_FINISHING
SUCCEEDED = tasks_pb2.TASK_STATUS_SUCCEEDED
FAILED = tasks_pb2.TASK_STATUS_FAILED
CANCELLED = tasks_pb2.TASK_STATUS_CANCELLED

TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELLED})

_ORDER = {WAITING: 1, QUEUED: 2, VALIDATING: 3, PROCESSING: 4, FINISHING: 5}

_NAMES = {
    WAITING: "waiting",
    QUEUED: "queued",
    VALIDATING: "validating",
    PROCESSING: "processing",
    FINISHING: "finishing",
    SUCCEEDED: "succeeded",
    FAILED: "failed",
    CANCELLED: "cancelled",
}
_BY_NAME = {name: value for value, name in _NAMES.items()}


def name(status: int) -> str:
    """The API name of a status, e.g. ``succeeded``."""
    return _NAMES[status]


def from_name(value: str) -> int | None:
    return _BY_NAME.get(value)


def names() -> list[str]:
    return list(_BY_NAME)


def is_terminal(status: int) -> bool:
    return status in TERMINAL


def can_move(current: int, new: int) -> bool:
    """True when ``current → new`` respects the lifecycle (staying put is allowed)."""
    if is_terminal(current):
        return current == new
    if is_terminal(new):
        return True
    return _ORDER.get(new, 0) >= _ORDER.get(current, 0)
