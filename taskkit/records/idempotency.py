"""Idempotency keys: one task per (project, key) for 24 hours, whatever the retries or the races.

A key is claimed with a KV ``create`` (only one writer can win) that records the task id the key
stands for and a fingerprint of the request. Later requests with the key get that task id back and
their own fingerprint is compared: the same request is a replay, a different one is refused. Two
concurrent requests with one key therefore converge on one task id; storing the record itself is
also a ``create``, so whichever of them gets there first stores it and the other reads it back.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from taskkit.errors import Contended, IdempotencyKeyReused

_CLAIM_ATTEMPTS = 3  # an entry can expire between a failed create and the read that follows it


@dataclass(frozen=True)
class Claim:
    task_id: str
    replayed: bool  # the key had been used before (by this very request, or a concurrent one)


def entry_name(project: str, key: str) -> str:
    """KV keys allow few characters: the client's key is hashed."""
    return f"{project}.{hashlib.sha256(key.encode()).hexdigest()}"


class IdempotencyKeys:
    """Claims of idempotency keys in the ``idempotency`` bucket (its TTL is the keys' lifetime)."""

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    async def claim(self, project: str, key: str, *, fingerprint: str, task_id: str) -> Claim:
        """The task id ``key`` stands for: ``task_id`` if this call claimed it first."""
        name = entry_name(project, key)
        value = json.dumps({"task_id": task_id, "fingerprint": fingerprint}).encode()
        for _ in range(_CLAIM_ATTEMPTS):
            try:
                await self._kv.create(name, value)
                return Claim(task_id=task_id, replayed=False)
            except KeyWrongLastSequenceError:
                pass
            try:
                entry = await self._kv.get(name)
            except KeyNotFoundError:
                continue  # expired just now: claim it afresh
            stored = json.loads(entry.value or b"{}")
            if stored.get("fingerprint") != fingerprint:
                raise IdempotencyKeyReused(
                    "This Idempotency-Key was already used with a different request; "
                    "use a new key for a new request."
                )
            return Claim(task_id=str(stored["task_id"]), replayed=True)
        raise Contended("This Idempotency-Key is being claimed by several requests at once; try again.")
