"""The HTTP/JSON gateway: authenticates, validates the JSON shape, and translates to gRPC."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import grpc
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.api import ROUTERS, HealthOut, authenticate
from gateway.core import (
    BodyLimit,
    KeyRing,
    from_domain,
    on_domain_error,
    on_http_error,
    on_rpc_error,
    on_validation_error,
)
from taskkit.config import Settings
from taskkit.errors import TransmuteError
from taskkit.rpc import Clients
from taskkit.storage import open_storage

_KEYED_PREFIXES = ("/tasks", "/signatures")  # /files links carry their own signature


def _openapi_without_422(app: FastAPI) -> dict[str, Any]:
    """FastAPI documents a 422 on every operation, but this API answers 400 ``{kind, message}``
    (gateway.core.errors.on_validation_error); drop the 422s so the document tells the truth."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
        for path in schema["paths"].values():
            for operation in path.values():
                operation.get("responses", {}).pop("422", None)
        for name in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(name, None)
        app.openapi_schema = schema
    return app.openapi_schema


def create_app(settings: Settings) -> FastAPI:
    if not settings.signing_secret.get_secret_value():
        raise SystemExit("TRANSMUTE_SIGNING_SECRET must be set (it signs file links).")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.clients = Clients.from_settings(settings)
        try:
            async with app.state.storage:  # the backend's clients, once per process
                yield
        finally:
            await app.state.clients.close()

    app = FastAPI(
        title="Transmute",
        version="0.1.0",
        summary="A self-hosted implementation of the ittybit Tasks API.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.keys = KeyRing.from_settings(settings)
    app.state.storage = open_storage(settings)
    app.add_exception_handler(TransmuteError, on_domain_error)
    app.add_exception_handler(grpc.aio.AioRpcError, on_rpc_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)

    @app.middleware("http")
    async def api_key(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        """API-key routes check the key first: no 400 about a body for a caller who is not allowed in."""
        if request.url.path.startswith(_KEYED_PREFIXES):
            try:
                authenticate(request)
            except TransmuteError as exc:
                return from_domain(exc)
        return await call_next(request)

    @app.get("/health", tags=["health"])
    async def health() -> HealthOut:
        return HealthOut(status="ok")

    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.openapi = lambda: _openapi_without_422(app)  # type: ignore[method-assign]
    for router in ROUTERS:
        app.include_router(router)
    return app
