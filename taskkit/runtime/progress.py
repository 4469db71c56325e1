"""One 0-100 for a whole task, however many steps it has.

A handler with several steps (a decode, a package write, a model pass, a child task) names them with
weights; each step reports its own 0-100 and the task's progress is the weighted sum. It only ever
rises, and it stops at 99 until the worker records success, so a task never reads 100 and then fails.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

Sink = Callable[[int], Awaitable[None]]
StepCallback = Callable[[int], Awaitable[None]]

_SINGLE = "run"
_MAX_BEFORE_DONE = 99


class Progress:
    """Weighted steps → one rising integer percent, written to ``sink``."""

    def __init__(self, sink: Sink) -> None:
        self._sink = sink
        self._weights: dict[str, float] = {_SINGLE: 1.0}
        self._done: dict[str, float] = {}
        self.percent = 0

    def plan(self, weights: Mapping[str, float]) -> None:
        """Declare the steps and their relative weights (before the first report)."""
        if not weights or any(w <= 0 for w in weights.values()):
            raise ValueError("progress steps need positive weights")
        self._weights = dict(weights)
        self._done = {}

    def step(self, name: str = _SINGLE) -> StepCallback:
        """The callback one step reports its own 0-100 to."""
        if name not in self._weights:
            raise KeyError(f"progress step {name!r} was not planned")

        async def report(percent: int) -> None:
            self._done[name] = max(self._done.get(name, 0.0), min(max(percent, 0), 100) / 100)
            await self._publish()

        return report

    async def _publish(self) -> None:
        total = sum(self._weights.values())
        done = sum(self._weights[name] * fraction for name, fraction in self._done.items())
        percent = min(_MAX_BEFORE_DONE, int(done * 100 / total))
        if percent > self.percent:
            self.percent = percent
            await self._sink(percent)
