"""Domain errors → gRPC status codes, in one interceptor for every server.

The error's ``kind`` travels in the trailing metadata entry ``transmute-error-kind`` so the
gateway can answer with the same ``{kind, message}`` body it would have produced itself.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from nats.errors import Error as NatsError

from taskkit import errors

log = logging.getLogger(__name__)

ERROR_KIND_KEY = "transmute-error-kind"

_CODES: list[tuple[type[errors.TransmuteError], grpc.StatusCode]] = [
    (errors.InvalidRequest, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.InputError, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.Conflict, grpc.StatusCode.ABORTED),
    (errors.IdempotencyKeyReused, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (errors.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (errors.Unimplemented, grpc.StatusCode.UNIMPLEMENTED),
    (errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
    (errors.TransientError, grpc.StatusCode.UNAVAILABLE),
    (errors.Cancelled, grpc.StatusCode.CANCELLED),
]


def status_code(error: errors.TransmuteError) -> grpc.StatusCode:
    for cls, code in _CODES:
        if isinstance(error, cls):
            return code
    return grpc.StatusCode.INTERNAL


async def _abort(context: grpc.aio.ServicerContext, error: errors.TransmuteError) -> None:
    await context.abort(status_code(error), error.message, ((ERROR_KIND_KEY, error.kind),))


def _store_down(exc: NatsError) -> errors.Unavailable:
    """NATS unreachable, restarting or timing out: records and queues are there, just not now.
    Callers get UNAVAILABLE (HTTP 503 with Retry-After), which they may retry, never INTERNAL."""
    log.warning("nats unavailable during a call", extra={"error": repr(exc)})
    return errors.Unavailable("The task store is unavailable; try again shortly.")


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    """Turns a raised TransmuteError into its status code and a NATS fault into UNAVAILABLE;
    anything else becomes INTERNAL."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        if handler.unary_unary is not None:
            unary = handler.unary_unary

            async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                try:
                    return await unary(request, context)
                except errors.TransmuteError as exc:
                    await _abort(context, exc)
                except NatsError as exc:
                    await _abort(context, _store_down(exc))

            return handler._replace(unary_unary=unary_unary)  # type: ignore[attr-defined]
        if handler.unary_stream is not None:
            stream = handler.unary_stream

            async def unary_stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                try:
                    async for item in stream(request, context):
                        yield item
                except errors.TransmuteError as exc:
                    await _abort(context, exc)
                except NatsError as exc:
                    await _abort(context, _store_down(exc))

            return handler._replace(unary_stream=unary_stream)  # type: ignore[attr-defined]
        return handler
