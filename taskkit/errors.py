"""One error vocabulary for every process.

Each error carries a stable snake_case ``kind`` (the HTTP error body's ``kind``) and a message that
is one actionable sentence. The gRPC interceptor maps these to status codes once
(``taskkit.rpc.errors``); the gateway maps status codes to HTTP once (``gateway.core.errors``).
"""

from __future__ import annotations


class TransmuteError(Exception):
    """Base of every domain error; ``kind`` names it on the wire."""

    kind = "internal_error"

    def __init__(self, message: str, *, kind: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if kind is not None:
            self.kind = kind


class InvalidRequest(TransmuteError):
    """The request itself is wrong: a bad field, option value or combination."""

    kind = "request_invalid"


class NotFound(TransmuteError):
    """The resource does not exist, or belongs to another project."""

    kind = "task_not_found"


class Conflict(TransmuteError):
    """The request contradicts the resource's state, e.g. cancelling a finished task."""

    kind = "task_terminal"


class IdempotencyKeyReused(TransmuteError):
    """An ``Idempotency-Key`` came back with a different request than the one it was first used for."""

    kind = "idempotency_key_reused"


class Unauthenticated(TransmuteError):
    kind = "token_invalid"


class PermissionDenied(TransmuteError):
    kind = "signature_invalid"


class Unavailable(TransmuteError):
    """A dependency is down or a kind is not served by this deployment."""

    kind = "service_unavailable"


class Unimplemented(TransmuteError):
    kind = "kind_unavailable"


class InputError(TransmuteError):
    """The task's input cannot be processed (unreachable, not media, too big). Final: no retry."""

    kind = "input_invalid"


class TransientError(TransmuteError):
    """A fault worth retrying later (network blip, dependency restart)."""

    kind = "transient"


class Contended(TransientError):
    """A record kept changing under a compare-and-set write; retrying later will do."""

    kind = "task_busy"


class Cancelled(TransmuteError):
    """The task was cancelled while it ran."""

    kind = "task_cancelled"
