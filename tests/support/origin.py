"""A local HTTP "origin" server that end-to-end tests point task inputs at.

:class:`Origin` serves the files of a directory on ``127.0.0.1`` and a free port,
with Range support and a few special paths that exercise a fetcher's edge cases::

    with Origin(corpus.root) as origin:
        url = origin.url("clip_av.mp4")
        ...
        assert "/clip_av.mp4" in origin.request_log

Special paths (they take precedence over files of the same name):

``/missing``
    404.
``/redirect?to=<url-encoded absolute url>``
    302 to ``to``.
``/redirect-loop``
    302 to itself, forever.
``/slow/<name>[?chunk=N&delay=S]``
    200 with the full Content-Length, then the body of ``<name>`` in ``chunk``-byte
    pieces every ``delay`` seconds (defaults from the constructor). Trickling stops
    when the client disconnects or the origin shuts down.
``/html``
    200 ``text/html`` page.
``/status/<code>``
    an empty response with that status code (e.g. ``/status/500``).
"""

from __future__ import annotations

import http.server
import mimetypes
import os
import re
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

__all__ = ["Origin", "RequestRecord"]

HTML_PAGE = (
    b'<!doctype html>\n<html><head><meta charset="utf-8"><title>origin</title></head>'
    b"<body><p>This is an HTML page, not media.</p></body></html>\n"
)

#: Explicit types so results do not depend on the host's /etc/mime.types.
CONTENT_TYPES: dict[str, str] = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
    ".mkv": "video/x-matroska",
    ".webm": "video/webm",
    ".mp3": "audio/mpeg",
    ".m4a": "audio/mp4",
    ".aac": "audio/aac",
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".ogg": "audio/ogg",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".bmp": "image/bmp",
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".json": "application/json",
    ".vtt": "text/vtt; charset=utf-8",
    ".srt": "application/x-subrip",
}

_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


def content_type_for(path: Path) -> str:
    """Return the Content-Type the origin sends for ``path``."""
    suffix = path.suffix.lower()
    if suffix in CONTENT_TYPES:
        return CONTENT_TYPES[suffix]
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"


@dataclass(frozen=True)
class RequestRecord:
    """One request the origin received."""

    method: str
    #: The raw request target, including any query string (e.g. ``/redirect?to=...``).
    path: str
    #: The ``Range`` header, if any.
    range: str | None
    #: Request headers (names as sent).
    headers: dict[str, str]


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    origin: Origin

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Record handler exceptions (e.g. client resets) instead of printing tracebacks."""
        exc = sys.exc_info()[1]
        self.origin.errors.append(f"{client_address}: {exc!r}")


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "TransmuteTestOrigin/1.0"
    # Socket timeout: idle keep-alive connections end instead of lingering forever.
    timeout = 10
    server: _Server

    # -- plumbing -----------------------------------------------------------------

    @property
    def origin(self) -> Origin:
        return self.server.origin

    def log_message(self, format: str, *args: Any) -> None:
        """Record instead of writing one stderr line per request."""
        self.origin._log_lines.append(format % args)

    def do_GET(self) -> None:
        self._dispatch(send_body=True)

    def do_HEAD(self) -> None:
        self._dispatch(send_body=False)

    def _dispatch(self, *, send_body: bool) -> None:
        self.origin._record(
            RequestRecord(
                method=self.command,
                path=self.path,
                range=self.headers.get("Range"),
                headers=dict(self.headers.items()),
            )
        )
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        query = parse_qs(parts.query)
        try:
            if path == "/missing":
                self._send_simple(404, b"not found\n", send_body=send_body)
            elif path == "/redirect":
                targets = query.get("to")
                if not targets:
                    self._send_simple(400, b"missing ?to=\n", send_body=send_body)
                else:
                    self._redirect(targets[0], send_body=send_body)
            elif path == "/redirect-loop":
                self._redirect(self.origin.url("redirect-loop"), send_body=send_body)
            elif path == "/html":
                self._send_simple(
                    200, HTML_PAGE, content_type="text/html; charset=utf-8", send_body=send_body
                )
            elif path.startswith("/status/"):
                self._status(path.removeprefix("/status/"), send_body=send_body)
            elif path.startswith("/slow/"):
                self._slow(path.removeprefix("/slow/"), query, send_body=send_body)
            else:
                self._file(path, send_body=send_body)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True

    # -- responses ----------------------------------------------------------------

    def _send_simple(
        self,
        code: int,
        body: bytes = b"",
        *,
        content_type: str = "text/plain; charset=utf-8",
        send_body: bool,
        extra: dict[str, str] | None = None,
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if send_body and body:
            self.wfile.write(body)

    def _redirect(self, location: str, *, send_body: bool) -> None:
        self._send_simple(302, b"redirecting\n", send_body=send_body, extra={"Location": location})

    def _status(self, code_text: str, *, send_body: bool) -> None:
        if not code_text.isdigit() or not 200 <= int(code_text) <= 599:
            self._send_simple(400, b"bad status code\n", send_body=send_body)
            return
        self._send_simple(int(code_text), b"", send_body=send_body)

    def _resolve(self, name: str) -> Path | None:
        """Map a request path to a regular file under the root, refusing traversal."""
        root = self.origin.root
        try:
            candidate = (root / name.lstrip("/")).resolve()
            if not candidate.is_relative_to(root) or not candidate.is_file():
                return None
        except (OSError, ValueError):  # e.g. embedded NUL bytes, over-long names
            return None
        return candidate

    def _file(self, path: str, *, send_body: bool) -> None:
        target = self._resolve(path)
        if target is None:
            self._send_simple(404, b"not found\n", send_body=send_body)
            return
        size = target.stat().st_size
        ctype = content_type_for(target)
        range_header = self.headers.get("Range")
        start, end = 0, size - 1
        status = 200
        if range_header is not None:
            parsed = _parse_range(range_header, size)
            if parsed is None:
                self._send_simple(416, b"", send_body=send_body, extra={"Content-Range": f"bytes */{size}"})
                return
            start, end = parsed
            status = 206
        length = end - start + 1 if size else 0
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Last-Modified", self.date_time_string(int(target.stat().st_mtime)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if not send_body or length == 0:
            return
        with target.open("rb") as fh:
            fh.seek(start)
            remaining = length
            while remaining > 0:
                chunk = fh.read(min(64 * 1024, remaining))
                if not chunk:
                    break
                self.wfile.write(chunk)
                remaining -= len(chunk)

    def _slow(self, name: str, query: dict[str, list[str]], *, send_body: bool) -> None:
        target = self._resolve(name)
        if target is None:
            self._send_simple(404, b"not found\n", send_body=send_body)
            return
        try:
            chunk_size = max(1, int(query.get("chunk", [self.origin.slow_chunk])[0]))
            delay = max(0.0, float(query.get("delay", [self.origin.slow_delay])[0]))
        except ValueError:
            self._send_simple(400, b"bad chunk/delay\n", send_body=send_body)
            return
        data = target.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", content_type_for(target))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.flush()
        if not send_body:
            return
        stop = self.origin._stopping
        for offset in range(0, len(data), chunk_size):
            if offset and stop.wait(delay):
                # Shutting down: abandon the body; the client sees a short read.
                self.close_connection = True
                return
            self.wfile.write(data[offset : offset + chunk_size])
            self.wfile.flush()


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """Parse a single ``bytes=`` range against ``size``; ``None`` if unsatisfiable/invalid.

    Multi-range requests are answered with their first range only.
    """
    spec = header.strip().split(",")[0].strip()
    match = _RANGE_RE.match(spec)
    if match is None or size == 0:
        return None
    first, last = match.groups()
    if first == "" and last == "":
        return None
    if first == "":  # suffix range: last N bytes
        n = int(last)
        if n == 0:
            return None
        return max(0, size - n), size - 1
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if start >= size or end < start:
        return None
    return start, end


class Origin:
    """A threaded HTTP server on ``127.0.0.1`` serving files under ``root``.

    Use as a context manager, or call :meth:`start` / :meth:`stop`. ``slow_chunk``
    and ``slow_delay`` set the default trickle rate of ``/slow/<name>``.
    """

    def __init__(
        self, root: str | os.PathLike[str], *, slow_chunk: int = 1024, slow_delay: float = 0.1
    ) -> None:
        self.root = Path(root).resolve()
        self.slow_chunk = slow_chunk
        self.slow_delay = slow_delay
        #: Raw request targets (path + query) in arrival order, e.g. ``"/clip_av.mp4"``.
        self.request_log: list[str] = []
        #: Full records of every request, in arrival order.
        self.requests: list[RequestRecord] = []
        #: Exceptions raised inside request handlers (normally empty).
        self.errors: list[str] = []
        self._log_lines: list[str] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------

    def start(self) -> Origin:
        """Bind a free port and start serving in a daemon thread; returns ``self``."""
        if self._server is not None:
            raise RuntimeError("origin already started")
        self._stopping.clear()
        server = _Server(("127.0.0.1", 0), _Handler)
        server.origin = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"origin-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, abort slow responses and close the listening socket. Idempotent."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Origin:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses ----------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound TCP port (only while started)."""
        if self._server is None:
            raise RuntimeError("origin is not running")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    def url(self, name: str | os.PathLike[str]) -> str:
        """Absolute URL for ``name``: a path relative to the root, or an absolute path inside it.

        Special paths work too: ``url("missing")``, ``url("slow/clip_av.mp4")``.
        """
        if isinstance(name, os.PathLike) and Path(name).is_absolute():
            rel = Path(name).resolve().relative_to(self.root).as_posix()
        else:
            rel = os.fspath(name).lstrip("/")
        return f"{self.base_url}/{quote(rel, safe='/?=&')}"

    def redirect_url(self, target: str) -> str:
        """URL that answers 302 to ``target`` (an absolute URL)."""
        return f"{self.base_url}/redirect?to={quote(target, safe='')}"

    def slow_url(self, name: str, *, chunk: int | None = None, delay: float | None = None) -> str:
        """URL that trickles ``name``; ``chunk``/``delay`` override the defaults."""
        url = f"{self.base_url}/slow/{quote(name.lstrip('/'))}"
        params = [f"{k}={v}" for k, v in (("chunk", chunk), ("delay", delay)) if v is not None]
        return url + ("?" + "&".join(params) if params else "")

    # -- request log --------------------------------------------------------------

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests.append(record)
            self.request_log.append(record.path)

    def hits(self, path: str) -> int:
        """Number of requests whose path (without query) equals ``path`` (leading ``/`` optional)."""
        wanted = "/" + path.lstrip("/")
        with self._lock:
            return sum(1 for p in self.request_log if unquote(urlsplit(p).path) == wanted)

    def clear_log(self) -> None:
        """Forget all recorded requests."""
        with self._lock:
            self.request_log.clear()
            self.requests.clear()
            self._log_lines.clear()
