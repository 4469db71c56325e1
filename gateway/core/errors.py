"""gRPC status codes and domain errors → HTTP responses, in one table.

Codes follow google/rpc/code.proto's HTTP mapping. The body is always ``{kind, message}``; the
kind comes from the service (trailing metadata) when it sent one, else from this table.
"""

from __future__ import annotations

import grpc
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from taskkit import errors
from taskkit.rpc import ERROR_KIND_KEY, status_code

HTTP_STATUS: dict[grpc.StatusCode, tuple[int, str]] = {
    grpc.StatusCode.CANCELLED: (499, "request_cancelled"),
    grpc.StatusCode.UNKNOWN: (500, "internal_error"),
    grpc.StatusCode.INVALID_ARGUMENT: (400, "request_invalid"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (504, "deadline_exceeded"),
    grpc.StatusCode.NOT_FOUND: (404, "not_found"),
    grpc.StatusCode.ALREADY_EXISTS: (409, "already_exists"),
    grpc.StatusCode.PERMISSION_DENIED: (403, "permission_denied"),
    grpc.StatusCode.UNAUTHENTICATED: (401, "token_invalid"),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (429, "rate_limited"),
    grpc.StatusCode.FAILED_PRECONDITION: (422, "idempotency_key_reused"),  # the only precondition we check
    grpc.StatusCode.ABORTED: (409, "conflict"),
    grpc.StatusCode.OUT_OF_RANGE: (400, "request_invalid"),
    grpc.StatusCode.UNIMPLEMENTED: (501, "kind_unavailable"),
    grpc.StatusCode.INTERNAL: (500, "internal_error"),
    grpc.StatusCode.UNAVAILABLE: (503, "service_unavailable"),
    grpc.StatusCode.DATA_LOSS: (500, "internal_error"),
}

_HIDDEN = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS}


RETRY_AFTER_S = 1  # what a 503 asks clients to wait: services and NATS restart in seconds


def error_body(status: int, kind: str, message: str) -> JSONResponse:
    """``{kind, message}``; a 503 also says when to try again (``Retry-After``)."""
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
    return JSONResponse({"kind": kind, "message": message}, status_code=status, headers=headers)


def from_domain(exc: errors.TransmuteError) -> JSONResponse:
    http_status, _ = HTTP_STATUS.get(status_code(exc), (500, "internal_error"))
    return error_body(http_status, exc.kind, exc.message)


def describe_rpc_error(exc: grpc.aio.AioRpcError) -> tuple[int, str, str]:
    """(HTTP status, kind, message) of a failed call, for a response or an SSE ``error`` event."""
    code = exc.code()
    http_status, kind = HTTP_STATUS.get(code, (500, "internal_error"))
    sent_kind = next((str(v) for k, v in exc.trailing_metadata() or () if k == ERROR_KIND_KEY), None)
    if sent_kind is None and code == grpc.StatusCode.UNAVAILABLE:
        # Not raised by our code: the channel could not reach the service at all.
        return 503, kind, "A backing service is unavailable; try again shortly."
    message = "An internal error occurred." if code in _HIDDEN else (exc.details() or "")
    return http_status, sent_kind or kind, message


def from_rpc(exc: grpc.aio.AioRpcError) -> JSONResponse:
    return error_body(*describe_rpc_error(exc))


def _field(loc: tuple) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


async def on_domain_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.TransmuteError)
    return from_domain(exc)


async def on_rpc_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, grpc.aio.AioRpcError)
    return from_rpc(exc)


async def on_validation_error(_: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422s become the API's 400 ``request_invalid``, naming the first bad field."""
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    if first.get("type") == "json_invalid":
        return error_body(400, "request_invalid", "The request body is not valid JSON.")
    field = _field(tuple(first.get("loc", ())))
    message = str(first.get("msg", "is invalid")).rstrip(".")
    if first.get("type") == "missing":
        return error_body(400, "request_invalid", f"The '{field}' field is required.")
    return error_body(400, "request_invalid", f"'{field}': {message}.")


async def on_http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    kinds = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}
    return error_body(exc.status_code, kinds.get(exc.status_code, "request_invalid"), str(exc.detail))
