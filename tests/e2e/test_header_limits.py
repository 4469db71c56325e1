"""Request-head limits: past them the gateway answers 431 ``{kind, message}`` and closes, before the app.

The gateway runs as production runs it (``python -m gateway``) with small limits, and requests go
over raw sockets so every byte of the head is the test's own. No NATS or media service is needed:
``/health`` answers without them, and an API-key route refuses or rejects before reaching them.
"""

from __future__ import annotations

import json
import os
import secrets
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from stack import free_port, wait_port
from tests.e2e.test_bad_inputs import assert_one_sentence

MAX_HEADER_BYTES = 8192
MAX_HEADER_COUNT = 50
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Gateway:
    proc: subprocess.Popen[bytes]
    port: int
    api_key: str

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS line")


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    root = tmp_path_factory.mktemp("header-limits")
    port = free_port()
    api_key = "ittybit_test_" + secrets.token_hex(8)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRANSMUTE_")}
    env.update(
        {
            "TRANSMUTE_SIGNING_SECRET": secrets.token_urlsafe(32),
            "TRANSMUTE_API_KEY": api_key,
            "TRANSMUTE_HTTP_PORT": str(port),
            "TRANSMUTE_STORAGE_DIR": str(root / "storage"),
            "TRANSMUTE_MAX_HEADER_BYTES": str(MAX_HEADER_BYTES),
            "TRANSMUTE_MAX_HEADER_COUNT": str(MAX_HEADER_COUNT),
        }
    )
    log = (root / "gateway.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_port(port, proc, "gateway")
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=10.0).raise_for_status()
        yield Gateway(proc, port, api_key)
    finally:
        proc.kill()
        proc.wait(timeout=10)
        log.close()


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


def parse_replies(raw: bytes) -> list[Reply]:
    """Every response in ``raw``; uvicorn and the 431 both send a Content-Length."""
    replies = []
    while raw:
        head, _, rest = raw.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
        length = int(headers["content-length"])
        replies.append(Reply(int(status_line.split()[1]), headers, rest[:length]))
        raw = rest[length:]
    return replies


def exchange(gateway: Gateway, data: bytes) -> tuple[list[Reply], bool]:
    """Send ``data`` on one connection, read to the server's close: (replies, whether it closed)."""
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10.0) as sock:
        sock.sendall(data)
        raw = b""
        try:
            while chunk := sock.recv(65536):
                raw += chunk
        except TimeoutError:
            return parse_replies(raw), False
    return parse_replies(raw), True


def request(
    method: str = "GET",
    path: str = "/health",
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    *,
    close: bool = True,
) -> bytes:
    """A request head (``Host``, then ``headers``, then ``Connection: close`` if asked) and its body."""
    lines = [f"{method} {path} HTTP/1.1", "Host: gateway", *(f"{n}: {v}" for n, v in headers or [])]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def padded(size: int, method: str = "GET", path: str = "/health", *, close: bool = True) -> bytes:
    """A bodiless request whose head is exactly ``size`` bytes, padded by one header."""
    bare = len(request(method, path, [("X-Pad", "")], close=close))
    return request(method, path, [("X-Pad", "p" * (size - bare))], close=close)


def with_headers(count: int, method: str = "GET", path: str = "/health") -> bytes:
    """A request with exactly ``count`` header lines, Host and Connection included."""
    return request(method, path, [(f"X-H{i}", "v") for i in range(count - 2)])


def assert_refused(replies: list[Reply], closed: bool, limit: int) -> None:
    assert [r.status for r in replies] == [431], replies
    reply = replies[0]
    assert reply.headers["content-type"] == "application/json"
    assert reply.headers["connection"] == "close"
    body = reply.json()
    assert isinstance(body, dict) and set(body) == {"kind", "message"}, body
    assert body["kind"] == "request_headers_too_large"
    assert str(limit) in body["message"], body
    assert_one_sentence(body["message"])
    assert closed, "the connection stayed open after a 431"


def test_header_count_at_the_limit_is_served(gateway: Gateway) -> None:
    replies, _ = exchange(gateway, with_headers(MAX_HEADER_COUNT))
    assert [r.status for r in replies] == [200]


def test_header_count_over_the_limit_is_431(gateway: Gateway) -> None:
    assert_refused(*exchange(gateway, with_headers(MAX_HEADER_COUNT + 1)), MAX_HEADER_COUNT)


def test_header_count_is_refused_before_auth_and_body(gateway: Gateway) -> None:
    """An unauthenticated POST with a body: within the limit auth refuses it, past it auth never runs."""
    for count, status in ((MAX_HEADER_COUNT, 401), (MAX_HEADER_COUNT + 1, 431)):
        headers = [*((f"X-H{i}", "v") for i in range(count - 3)), ("Content-Length", "2")]
        replies, closed = exchange(gateway, request("POST", "/tasks", headers, b"{}"))
        assert [r.status for r in replies] == [status], replies
    assert_refused(replies, closed, MAX_HEADER_COUNT)


def test_head_of_exactly_the_limit_is_served(gateway: Gateway) -> None:
    data = padded(MAX_HEADER_BYTES)
    assert len(data) == MAX_HEADER_BYTES
    replies, _ = exchange(gateway, data)
    assert [r.status for r in replies] == [200]


def test_head_one_byte_over_the_limit_is_431(gateway: Gateway) -> None:
    data = padded(MAX_HEADER_BYTES + 1)
    assert len(data) == MAX_HEADER_BYTES + 1
    assert_refused(*exchange(gateway, data), MAX_HEADER_BYTES)


def test_head_sent_byte_by_byte_is_counted_the_same(gateway: Gateway) -> None:
    """The blank line that ends a head may arrive split across reads; and a head that reaches the
    limit unfinished is refused then, without waiting for its end."""
    for size, status, sent in (
        (MAX_HEADER_BYTES, 200, MAX_HEADER_BYTES),
        (MAX_HEADER_BYTES + 1, 431, MAX_HEADER_BYTES),
    ):
        data = padded(size)
        with socket.create_connection(("127.0.0.1", gateway.port), timeout=10.0) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            done = len(data) - 3
            sock.sendall(data[:done])
            while done < len(data) and not select.select([sock], [], [], 0.5)[0]:
                done += sock.send(data[done : done + 1])
            raw = b""
            while chunk := sock.recv(65536):
                raw += chunk
        assert [r.status for r in parse_replies(raw)] == [status]
        assert done == sent


def test_a_blank_line_split_across_reads_still_ends_the_head(gateway: Gateway) -> None:
    """The read that finishes one head starts the next: that one is still counted from its start."""
    first, second = padded(MAX_HEADER_BYTES * 3 // 4, close=False), padded(MAX_HEADER_BYTES + 1)
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10.0) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(first[:-2])
        time.sleep(0.2)
        sock.sendall(first[-2:] + second)
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    assert [r.status for r in parse_replies(raw)] == [200, 431]


def test_pipelined_requests_each_get_their_own_budget(gateway: Gateway) -> None:
    """Three heads of 6 KB in one write: 18 KB together, each under the 8 KB limit."""
    size = MAX_HEADER_BYTES * 3 // 4
    replies, closed = exchange(gateway, padded(size, close=False) * 2 + padded(size))
    assert [r.status for r in replies] == [200, 200, 200]
    assert closed


def test_a_pipelined_head_over_the_limit_is_answered_in_turn(gateway: Gateway) -> None:
    """The requests before it get their own answers first, then the 431, then the close."""
    data = padded(MAX_HEADER_BYTES * 3 // 4, close=False) * 2 + padded(MAX_HEADER_BYTES + 1)
    replies, closed = exchange(gateway, data)
    assert [r.status for r in replies] == [200, 200, 431]
    assert_refused(replies[2:], closed, MAX_HEADER_BYTES)


def _chunked(body: bytes, size: int = 4096) -> bytes:
    parts = [
        b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size]) for i in range(0, len(body), size)
    ]
    return b"".join(parts) + b"0\r\n\r\n"


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
@pytest.mark.parametrize(
    ("next_head", "next_status"), [(MAX_HEADER_BYTES - 10, 200), (MAX_HEADER_BYTES + 1, 431)]
)
def test_a_body_is_not_counted_as_head(
    gateway: Gateway, framing: str, next_head: int, next_status: int
) -> None:
    """A 100 KB body, then a pipelined request in the same write: the body reaches the app whole
    (it answers about the JSON in it), counts towards no head, and hides no head from the count."""
    body = b"{" + b"x" * 100_000
    if framing == "chunked":
        encoded, framing_header = _chunked(body), ("Transfer-Encoding", "chunked")
    else:
        encoded, framing_header = body, ("Content-Length", str(len(body)))
    headers = [("Authorization", f"Bearer {gateway.api_key}"), ("Content-Type", "application/json")]
    post = request("POST", "/tasks", [*headers, framing_header], encoded, close=False)
    replies, _ = exchange(gateway, post + padded(next_head))
    assert [r.status for r in replies] == [400, next_status], replies
    error = replies[0].json()
    assert isinstance(error, dict) and error["kind"] == "request_invalid", error


@dataclass
class Flood:
    sent: int = 0
    reply: bytes = b""
    error: str = ""


def flood(gateway: Gateway, total: int, out: Flood) -> None:
    """An unauthenticated POST whose one header is ``total`` bytes, sent until the server answers or
    hangs up; then whatever it answered (a reset may leave nothing to read) goes to ``out``."""
    chunk = b"a" * 65536
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10.0) as sock:
        try:
            sock.sendall(b"POST /tasks HTTP/1.1\r\nHost: gateway\r\nX-Big: ")
            while out.sent < total and not select.select([sock], [], [], 0)[0]:
                out.sent += sock.send(chunk)
        except (BrokenPipeError, ConnectionResetError) as exc:
            out.error = type(exc).__name__
        try:
            while data := sock.recv(65536):
                out.reply += data
        except ConnectionResetError as exc:
            out.error = out.error or type(exc).__name__


def test_a_50_mb_header_is_refused_early_and_costs_nothing(gateway: Gateway) -> None:
    total = 50 * 1024 * 1024
    with httpx.Client(base_url=gateway.base_url, timeout=10.0) as client:
        assert client.get("/health").status_code == 200
        baseline = gateway.rss_bytes()
        floods = [Flood() for _ in range(8)]
        senders = [threading.Thread(target=flood, args=(gateway, total, f)) for f in floods]
        for sender in senders:
            sender.start()
        slowest, peak = 0.0, baseline
        while any(sender.is_alive() for sender in senders):
            started = time.monotonic()
            assert client.get("/health").status_code == 200
            slowest = max(slowest, time.monotonic() - started)
            peak = max(peak, gateway.rss_bytes())
        for sender in senders:
            sender.join()
        started = time.monotonic()
        assert client.get("/health").status_code == 200
        slowest = max(slowest, time.monotonic() - started)
    peak = max(peak, gateway.rss_bytes())
    for f in floods:
        assert f.sent < 16 * 1024 * 1024, f"the gateway read {f.sent} bytes of a 50 MB header"
        assert f.reply, f"no answer before the hang-up ({f.error})"
        assert [r.status for r in parse_replies(f.reply)] == [431], f.reply[:200]
    assert slowest < 1.0, f"/health took {slowest:.2f} s during the flood"
    assert peak - baseline < 50 * 1024 * 1024, f"gateway RSS grew by {(peak - baseline) / 2**20:.0f} MB"
