"""What a gRPC call carries besides its message, in metadata entries.

- ``transmute-project``: the caller's project, on every call (``project_metadata(project)``). The
  gateway authenticates API keys and forwards the key's project; services trust it (they sit
  behind the gateway or envoy, never on the public edge). Records are keyed by project, so a task
  of another project is simply not found.
- ``idempotency-key``: the client's ``Idempotency-Key`` (Stripe's semantics, kept 24 h per project
  in ``taskkit.records.idempotency``): the same key and body give the original task back.
- ``transmute-task-id``: the id a caller proposes for the new task. The gateway picks one per HTTP
  request and sends it on every retry of that request's Create RPC, so an attempt that stored the
  record before its reply was lost is found, not repeated.
- ``idempotent-replayed`` (trailing metadata of the reply): ``true`` when the task existed already.
"""

from __future__ import annotations

import re

import grpc

from taskkit import ids
from taskkit.errors import InvalidRequest

PROJECT_KEY = "transmute-project"
IDEMPOTENCY_KEY = "idempotency-key"
TASK_ID_KEY = "transmute-task-id"
REPLAYED_KEY = "idempotent-replayed"
MAX_KEY_LENGTH = 255
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def project_metadata(project: str) -> tuple[tuple[str, str], ...]:
    """The metadata of a call made for ``project``."""
    return ((PROJECT_KEY, project),)


def check_project(name: str) -> str:
    if not _NAME.match(name):
        raise InvalidRequest(f"'{name}' is not a valid project name: use 1-64 letters, digits, '-' or '_'.")
    return name


def project_of(context: grpc.aio.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == PROJECT_KEY:
            return check_project(str(value))
    raise InvalidRequest(f"The '{PROJECT_KEY}' metadata entry is required.")


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
