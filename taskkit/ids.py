"""Resource ids: a prefix plus 16 lowercase base-36 characters.

The first 8 characters encode the creation time in milliseconds, so ids sort by creation time
(lexicographic order = chronological order) and the task store can page by key. The last 8 are
random (36^8 ≈ 2.8e12 per millisecond), so ids are not guessable in practice.
"""

from __future__ import annotations

import secrets
import time

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_TIME_CHARS = 8
_RANDOM_CHARS = 8


def _base36(value: int, width: int) -> str:
    chars = []
    for _ in range(width):
        value, rem = divmod(value, 36)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def new_id(prefix: str, *, now_ms: int | None = None) -> str:
    """Return ``<prefix>_<8 time chars><8 random chars>``."""
    millis = int(time.time() * 1000) if now_ms is None else now_ms
    random_part = "".join(secrets.choice(_ALPHABET) for _ in range(_RANDOM_CHARS))
    return f"{prefix}_{_base36(millis, _TIME_CHARS)}{random_part}"


def task_id() -> str:
    return new_id("task")


def run_id() -> str:
    return new_id("run")


def event_id() -> str:
    return new_id("evt")


def is_valid(prefix: str, value: str) -> bool:
    head, sep, tail = value.partition("_")
    return (
        sep == "_"
        and head == prefix
        and len(tail) == _TIME_CHARS + _RANDOM_CHARS
        and all(c in _ALPHABET for c in tail)
    )
