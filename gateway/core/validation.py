"""One validation layer for every JSON body, before any route code or pydantic model sees it.

FastAPI parses bodies with ``json.loads``, which accepts ``Infinity``/``NaN``, lone UTF-16
surrogates (``"\\ud800"``) and any nesting depth. None of them can be answered or stored: a
response with one fails to render, a surrogate cannot be encoded for gRPC, and protobuf refuses
messages nested past 100 levels. :class:`CheckedRoute` gives every route of a router a request
whose ``json()`` refuses them with a 400 naming the field (``taskkit.records.json_values``), so no
route needs its own guard. FastAPI passes an ``HTTPException`` raised there through unchanged, and
``gateway.core.errors.on_http_error`` renders it as ``{kind: "request_invalid", message}``.

Query parameters are bounded where they are declared (``Query(ge=, le=)``); the head and the body
size by ``gateway.core.limits``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.routing import APIRoute

from taskkit.errors import InvalidRequest
from taskkit.records import json_values


class CheckedRequest(Request):
    """A request whose JSON body holds only values the API can store and render."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                value = json.loads(body)
            except json.JSONDecodeError:
                raise  # FastAPI answers it as invalid JSON
            except RecursionError:
                raise HTTPException(
                    400, f"The request body is nested deeper than {json_values.MAX_BODY_DEPTH} levels."
                ) from None
            except ValueError:  # an integer past Python's 4,300-digit limit
                raise HTTPException(400, "The request body holds a number too long to parse.") from None
            try:
                json_values.check_value(value)
            except InvalidRequest as exc:
                raise HTTPException(400, exc.message) from None
            self._json = value
        return self._json


class CheckedRoute(APIRoute):
    """Routes whose handlers receive a :class:`CheckedRequest`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def checked(request: Request) -> Response:
            return await handler(CheckedRequest(request.scope, request.receive))

        return checked
