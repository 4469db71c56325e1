"""Calling a family service within one request's deadline, retrying while it is unavailable.

A service being restarted or redeployed, or NATS restarting under it, answers UNAVAILABLE for a
few seconds. Calls that are safe to repeat go through ``call``: reads, and creates, which carry a
task id proposed once per HTTP request (``taskkit.rpc.metadata``) so that a repeat finds the task
of an attempt whose reply was lost instead of making a second one. A restart then costs the client
latency, not an error; only when the service stays unavailable for the whole request deadline is
the answer 503 ``service_unavailable`` (with ``Retry-After``).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import grpc

from taskkit.errors import Unavailable

_FIRST_BACKOFF_S = 0.05
_MAX_BACKOFF_S = 1.0
_MIN_ATTEMPT_S = 0.25  # no attempt is started with less time than this left


async def call(
    method: Callable[..., Any], request: Any, *, metadata: Sequence[tuple[str, str]], timeout_s: float
) -> tuple[Any, tuple[tuple[str, str], ...]]:
    """The reply and trailing metadata of ``method(request)``, retried with jittered exponential
    backoff on UNAVAILABLE until ``timeout_s`` has passed."""
    deadline = time.monotonic() + timeout_s
    backoff = _FIRST_BACKOFF_S
    retried = False
    while True:
        pending = method(request, metadata=tuple(metadata), timeout=max(deadline - time.monotonic(), 0.01))
        try:
            reply = await pending
            trailing = await pending.trailing_metadata()
            return reply, tuple((str(k), str(v)) for k, v in trailing or ())
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            if retried and code == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise _unavailable() from exc  # the deadline ran out while the service was down
            if code != grpc.StatusCode.UNAVAILABLE:
                raise
            pause = random.uniform(backoff / 2, backoff)
            if time.monotonic() + pause + _MIN_ATTEMPT_S > deadline:
                raise
            await asyncio.sleep(pause)
            backoff = min(backoff * 2, _MAX_BACKOFF_S)
            retried = True


def _unavailable() -> Unavailable:
    return Unavailable("A backing service is unavailable; try again shortly.")
