"""What a create carries so that a retry of it never makes a second task.

- ``idempotency-key``: the client's ``Idempotency-Key`` (Stripe's semantics, kept 24 h per project
  in ``taskkit.idempotency``): the same key and body give the original task back.
- ``transmute-task-id``: the id a caller proposes for the new task. The gateway picks one per HTTP
  request and sends it on every retry of that request's Create RPC, so an attempt that stored the
  record before its reply was lost is found, not repeated.
- ``idempotent-replayed`` (trailing metadata of the reply): ``true`` when the task existed already.
"""

from __future__ import annotations

import grpc

from taskkit import ids
from taskkit.errors import InvalidRequest

IDEMPOTENCY_KEY = "idempotency-key"
TASK_ID_KEY = "transmute-task-id"
REPLAYED_KEY = "idempotent-replayed"
MAX_KEY_LENGTH = 255


def check_idempotency_key(key: str) -> str:
    if not 0 < len(key) <= MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise InvalidRequest(
            f"The Idempotency-Key header must be 1 to {MAX_KEY_LENGTH} printable ASCII characters."
        )
    return key


def from_context(context: grpc.aio.ServicerContext) -> tuple[str | None, str | None]:
    """(idempotency key, proposed task id) of a Create call; either may be absent."""
    found = {str(k): str(v) for k, v in context.invocation_metadata() or ()}
    key = found.get(IDEMPOTENCY_KEY)
    task_id = found.get(TASK_ID_KEY)
    if task_id is not None and not ids.is_valid("task", task_id):
        raise InvalidRequest(f"The '{TASK_ID_KEY}' metadata entry is not a task id.")
    return (None if key is None else check_idempotency_key(key)), task_id
