"""The HTTP/JSON gateway: authenticates, validates the JSON shape, and translates to gRPC."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import grpc
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway import errors
from gateway.api.routes import files, signatures, tasks
from gateway.core.auth import KeyRing
from gateway.core.clients import Clients
from taskkit.config import Settings
from taskkit.errors import TransmuteError
from taskkit.storage import open_storage


def create_app(settings: Settings) -> FastAPI:
    if not settings.signing_secret.get_secret_value():
        raise SystemExit("TRANSMUTE_SIGNING_SECRET must be set (it signs file links).")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.clients = Clients.from_settings(settings)
        try:
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
    app.add_exception_handler(TransmuteError, errors.on_domain_error)
    app.add_exception_handler(grpc.aio.AioRpcError, errors.on_rpc_error)
    app.add_exception_handler(RequestValidationError, errors.on_validation_error)
    app.add_exception_handler(StarletteHTTPException, errors.on_http_error)

    @app.middleware("http")
    async def limit_body(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        """Refuse oversized JSON bodies before reading them (uploads have their own limit)."""
        length = request.headers.get("content-length")
        if request.method != "PUT" and length and length.isdigit() and int(length) > settings.max_body_bytes:
            return errors.error_body(
                413,
                "request_too_large",
                f"The request body is over the limit of {settings.max_body_bytes} bytes.",
            )
        return await call_next(request)

    @app.get("/health", tags=["health"])
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(tasks.router)
    app.include_router(files.router)
    app.include_router(signatures.router)
    return app
