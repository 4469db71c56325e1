"""When to restart a process of ``python -m stack`` that died, and when to give up on it: pure
functions over the times it exited, so the policy is tested without a process or a clock.

The rule, as Kubernetes applies it to a crashing pod: a process that exits is started again after
a delay that doubles with each exit in the last ``window_s`` (0.5 s, 1 s, 2 s … at most
``max_delay_s``), so a process that died once comes back at once and one that crashes at start-up
does not spin. More than ``max_exits`` exits within the window means restarting will not help (a
bad setting, a port taken, a broken build): the stack gives up on it and stops, naming it, rather
than hide the fault behind endless restarts. Exits older than the window are forgotten, so a
process that dies once an hour is always restarted at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class RestartPolicy:
    first_delay_s: float = 0.5
    max_delay_s: float = 10.0
    max_exits: int = 5  # more exits than this within window_s: give up
    window_s: float = 60.0


@dataclass(frozen=True)
class Restart:
    """Start it again after ``delay_s``; ``exits`` is how many exits fall within the window."""

    delay_s: float
    exits: int


@dataclass(frozen=True)
class GiveUp:
    exits: int


def recent(exits: Sequence[float], now: float, policy: RestartPolicy) -> list[float]:
    """The exit times within the policy's window before ``now``."""
    return [at for at in exits if now - at <= policy.window_s]


def decide(exits: Sequence[float], now: float, policy: RestartPolicy) -> Restart | GiveUp:
    """What to do about a process that has just exited, given every time it exited (the latest
    included)."""
    count = len(recent(exits, now, policy))
    if count > policy.max_exits:
        return GiveUp(count)
    delay = policy.first_delay_s * 2 ** max(count - 1, 0)
    return Restart(min(delay, policy.max_delay_s), count)


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th … 11th, 12th, 13th … 21st."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
