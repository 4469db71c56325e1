"""Limits on a request's size, answered ``{kind, message}`` before the app reads past them: its
head (request line + headers) → ``431`` in the HTTP protocol (:class:`HeaderLimitedProtocol`),
its body → ``413`` in ASGI (:class:`BodyLimit`).

Why the head is limited in uvicorn's httptools protocol: httptools has no limit on the head at
all, and it joins every header value in Python bytes (``+=`` once per TCP read), so a 50 MB header
costs memory and quadratic copying before uvicorn, let alone the ASGI app, sees a single header.
No middleware can help: by the time ASGI sees a request its head is already parsed. uvicorn's only
head limit is h11's ``h11_max_incomplete_event_size``, which answers a plain-text 400 (this API
answers ``{kind, message}``), has no header count, and trades llhttp for a pure-Python parser.

How: the parser is fed one piece at a time, and no piece runs past the next point where a part of
a message can end: a head at its blank line (llhttp, as uvicorn sets it up, insists on CRLF, so
that is the first ``\\r\\n\\r\\n``), a body after its Content-Length, a chunked body at a
``\\r\\n\\r\\n`` (its last chunk, or trailers, end in one). So every piece belongs to one message:
head bytes are counted exactly, each pipelined request gets its own budget, the parser never holds
more than ``max_header_bytes`` of a head, and a body is never counted as head. A head that reaches
the limit unfinished, or that has too many headers, gets a complete 431 written on the transport,
which is then closed: its headers never reach the app, so no auth work and no body reading happen.
Requests pipelined before it are answered first (answers go in request order); until then what
else arrives is read and dropped. A client still sending when the socket closes gets a reset; the
431 went out before it. This leans on uvicorn internals (the parser callbacks, ``cycle``,
``on_response_complete``); tests/e2e/test_header_limits.py holds the behaviour across upgrades.

The body limit also holds for chunked bodies (no Content-Length): pure ASGI, so it can count bytes
as they arrive and stop reading at the limit, instead of buffering an oversized body first. Past
the limit it answers 413 itself, tells the app the client went away, and drops whatever the app
then tries to send. Signed uploads (PUT /files/...) have their own, larger limit.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from gateway.core.errors import error_body
from taskkit.config import Settings

_BLANK_LINE = b"\r\n\r\n"
_KIND = "request_headers_too_large"


class HeaderLimitedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with head limits; :func:`header_limited_protocol` sets them."""

    max_header_bytes: ClassVar[int]
    max_header_count: ClassVar[int]

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._refusal: str | None = None  # the message of the 431 this connection ends with
        self._tail = b""  # the last bytes fed, so a blank line split across two reads is still found
        self._body_left: int | None = None  # of a Content-Length body; None for a chunked one
        self._start_head()

    def _start_head(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        self._header_count = 0

    def data_received(self, data: bytes) -> None:
        while data and self._refusal is None and not self.transport.is_closing():
            size = self._next_piece(data)
            piece, data = data[:size], data[size:]
            if self._in_head:
                self._head_bytes += size
            elif self._body_left is not None:
                self._body_left -= size
            super().data_received(piece)
            self._tail = (self._tail + piece[-3:])[-3:]
            if self._refusal is not None or self.transport.is_closing() or self.parser.should_upgrade():
                return  # refused, closed or upgraded: as in uvicorn, the rest of this read is not parsed
            if self._in_head and self._head_bytes >= self.max_header_bytes:
                self._refuse(self._too_many_bytes())
            elif self._header_count > self.max_header_count:
                self._refuse(self._too_many_headers())

    def _next_piece(self, data: bytes) -> int:
        """How much of ``data`` to feed now: never past the end of the current head or body."""
        if self._in_head:
            return self._through_blank_line(data, self.max_header_bytes - self._head_bytes)
        if self._body_left is not None:
            return min(len(data), self._body_left)
        return self._through_blank_line(data, len(data))

    def _through_blank_line(self, data: bytes, limit: int) -> int:
        """The length of ``data`` up to and including its first blank line (one begun in the bytes
        already fed counts), at most ``limit``."""
        across = (self._tail + data[:3]).find(_BLANK_LINE)
        if across >= 0:
            return min(across + len(_BLANK_LINE) - len(self._tail), limit)
        found = data.find(_BLANK_LINE, 0, limit)
        return found + len(_BLANK_LINE) if found >= 0 else min(len(data), limit)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        """The gate before the app: a head with too many headers never becomes a request."""
        if self._header_count > self.max_header_count:
            self._refuse(self._too_many_headers())
            return
        self._in_head = False
        headers = dict(self.headers)
        self._body_left = None if b"transfer-encoding" in headers else int(headers.get(b"content-length", 0))
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        if self._refusal is not None:
            return  # a refused head started no request, so there is nothing to complete
        super().on_message_complete()
        self._start_head()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._refusal is not None and self.cycle.response_complete and not self.transport.is_closing():
            self._send_431(self._refusal)

    def _too_many_bytes(self) -> str:
        return f"The request line and headers are over the limit of {self.max_header_bytes} bytes."

    def _too_many_headers(self) -> str:
        return f"The request has more headers than the limit of {self.max_header_count}."

    def _refuse(self, message: str) -> None:
        """Answer 431 now, or once the requests before this one are answered."""
        self._refusal = message
        self.logger.warning("Refused a request head: %s", message)
        if self.cycle is None or self.cycle.response_complete:
            self._send_431(message)

    def _send_431(self, message: str) -> None:
        """Answer and close, as uvicorn answers a head it cannot parse (``send_400_response``)."""
        body = bytes(error_body(431, _KIND, message).body)
        content = [STATUS_LINE[431]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: application/json\r\n",
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()


def header_limited_protocol(settings: Settings) -> type[HeaderLimitedProtocol]:
    """The protocol class for ``uvicorn.run(http=...)``, with this deployment's head limits."""
    if settings.max_header_bytes < 1 or settings.max_header_count < 1:
        raise SystemExit("TRANSMUTE_MAX_HEADER_BYTES and TRANSMUTE_MAX_HEADER_COUNT must be at least 1.")

    class Configured(HeaderLimitedProtocol):
        max_header_bytes = settings.max_header_bytes
        max_header_count = settings.max_header_count

    return Configured


class BodyLimit:
    """ASGI middleware: ``413`` past ``max_bytes`` of request body (signed PUT uploads excepted)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "PUT":
            await self.app(scope, receive, send)
            return
        too_large = error_body(
            413, "request_too_large", f"The request body is over the limit of {self.max_bytes} bytes."
        )
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await too_large(scope, receive, send)
            return
        received = 0
        rejected = False

        async def limited_receive() -> Message:
            nonlocal received, rejected
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes and not rejected:
                    rejected = True
                    await too_large(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not rejected:
                await send(message)

        await self.app(scope, limited_receive, guarded_send)
