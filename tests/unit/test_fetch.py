"""The safe URL fetcher against real HTTP(S) servers on 127.0.0.1.

There is no public host to test against, so tests that need the address policy on
(``allow_private=False``) reach the local server through a fake hostname: a test resolver maps
``public.test`` to 127.0.0.1 and a test address check admits exactly that (hostname, address) pair;
every other address still goes through :func:`check_address`.
"""

from __future__ import annotations

import http.server
import ipaddress
import logging
import random
import shlex
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from taskkit.config import Settings
from taskkit.errors import InputError, TransientError
from taskkit.fetch import (
    AddressCheck,
    FetchPolicy,
    IPAddress,
    Resolver,
    check_address,
    check_scheme,
    fetch_to_file,
    redact_url,
)

BODY = random.Random(7).randbytes(700_000)
CHUNKED_TOTAL = 2 * 1024 * 1024
SECRET = "X-Amz-Signature=deadbeefsecret"


# --- a local origin --------------------------------------------------------------------------------


@dataclass
class Seen:
    """What the origin received: one (path with query, Host header) per request."""

    requests: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def paths(self) -> list[str]:
        with self.lock:
            return [path for path, _ in self.requests]


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    seen: Seen
    stop: threading.Event

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that give up mid-response (the point of several tests) are not errors."""


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def do_GET(self) -> None:
        with self.server.seen.lock:
            self.server.seen.requests.append((self.path, self.headers.get("Host", "")))
        parts = urlsplit(self.path)
        path = parts.path
        try:
            if path == "/file":
                self._send(200, BODY, content_type="video/mp4")
            elif path.startswith("/status/"):
                self._send(int(path.removeprefix("/status/")), b"")
            elif path.startswith("/redirect/"):
                remaining = int(path.removeprefix("/redirect/"))
                target = "/file" if remaining == 0 else f"/redirect/{remaining - 1}"
                self._send(302, b"", location=target)
            elif path == "/to":
                self._send(302, b"", location=parse_qs(parts.query)["url"][0])
            elif path == "/declared-big":
                self._headers(200, {"Content-Length": "10000000"})
                self.server.stop.wait(5)  # the body never needs to come
            elif path == "/chunked":
                self._chunked()
            elif path == "/stall":
                self._headers(200, {"Content-Length": "10"})
                if not self.server.stop.wait(2):
                    self.wfile.write(b"0123456789")
            elif path == "/drip":
                self._headers(200, {"Content-Length": "1000000"})
                while not self.server.stop.wait(0.05):
                    self.wfile.write(b"x" * 100)
                    self.wfile.flush()
            else:
                self._send(404, b"")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _headers(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.flush()

    def _send(self, status: int, body: bytes, *, content_type: str = "", location: str = "") -> None:
        headers = {"Content-Length": str(len(body))}
        if content_type:
            headers["Content-Type"] = content_type
        if location:
            headers["Location"] = location
        self._headers(status, headers)
        self.wfile.write(body)

    def _chunked(self) -> None:
        self._headers(200, {"Transfer-Encoding": "chunked", "Content-Type": "video/mp4"})
        piece = b"c" * 65536
        for _ in range(CHUNKED_TOTAL // len(piece)):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        self.wfile.write(b"0\r\n\r\n")


@dataclass
class Origin:
    port: int
    seen: Seen
    scheme: str = "http"

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"


def _serve(tls: ssl.SSLContext | None = None) -> Iterator[tuple[_Server, Origin]]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.seen = Seen()
    server.stop = threading.Event()
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    origin = Origin(port=server.server_address[1], seen=server.seen, scheme="https" if tls else "http")
    try:
        yield server, origin
    finally:
        server.stop.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def _origin_server() -> Iterator[tuple[_Server, Origin]]:
    yield from _serve()


@pytest.fixture
def origin(_origin_server: tuple[_Server, Origin]) -> Origin:
    server, origin = _origin_server
    with server.seen.lock:
        server.seen.requests.clear()
    return origin


# --- helpers -----------------------------------------------------------------------------------------


def policy(**overrides: Any) -> FetchPolicy:
    values: dict[str, Any] = {
        "allow_private": True,
        "max_bytes": 10_000_000,
        "max_redirects": 5,
        "connect_timeout": 2.0,
        "read_timeout": 2.0,
        "total_timeout": 10.0,
    }
    values.update(overrides)
    return FetchPolicy(**values)


def fake_dns(table: dict[str, str], calls: list[tuple[str, int]] | None = None) -> Resolver:
    """A resolver answering from ``table``; unknown names fail like getaddrinfo does."""

    async def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append((host, port))
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [table[host]]

    return resolve


def admit_only(host: str, address: str) -> AddressCheck:
    """The production check with one (hostname, address) pair let through."""
    admitted = (host, ipaddress.ip_address(address))

    def check(name: str, ip: IPAddress) -> None:
        if (name, ip) != admitted:
            check_address(ip, allow_private=False)

    return check


PUBLIC_DNS = {"public.test": "127.0.0.1", "metadata.test": "169.254.169.254", "intranet.test": "10.1.2.3"}
PUBLIC_ONLY = admit_only("public.test", "127.0.0.1")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- pure checks ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "private"),
        ("255.255.255.255", "private"),
        ("192.0.2.1", "private"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fd00::1", "private"),
        ("fec0::1", "private"),
        ("ff02::1", "multicast"),
        ("2001:db8::1", "private"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "link-local"),
        ("64:ff9b::a01:203", "private"),  # NAT64 of 10.1.2.3
        ("2002:7f00:1::1", "loopback"),  # 6to4 of 127.0.0.1
    ],
)
def test_check_address_refuses_non_public(address: str, reason: str) -> None:
    ip = ipaddress.ip_address(address)
    with pytest.raises(InputError) as caught:
        check_address(ip, allow_private=False)
    assert caught.value.message == (
        f"the input URL resolves to a private or reserved address ({ip} is {reason})"
    )
    assert caught.value.kind == "input_invalid"


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"],
)
def test_check_address_admits_public(address: str) -> None:
    check_address(ipaddress.ip_address(address), allow_private=False)


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.1", "169.254.169.254", "::1", "0.0.0.0"])
def test_check_address_allow_private_admits_everything(address: str) -> None:
    check_address(ipaddress.ip_address(address), allow_private=True)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/a.mp4", "the input URL must use http or https, not ftp"),
        ("file:///etc/passwd", "the input URL must use http or https, not file"),
        ("gopher://example.com:70/", "the input URL must use http or https, not gopher"),
        ("example.com/a.mp4", "the input URL must be an absolute http or https URL"),
        ("http:///a.mp4", "the input URL has no host"),
    ],
)
def test_check_scheme_refuses(url: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        check_scheme(url)
    assert caught.value.message == message


@pytest.mark.parametrize("url", ["http://example.com/a.mp4", "HTTPS://Example.COM:8443/a?b=c"])
def test_check_scheme_accepts_http_and_https(url: str) -> None:
    check_scheme(url)


def test_redact_url_drops_credentials_query_and_fragment() -> None:
    assert redact_url(f"https://user:pw@cdn.test:8443/in/clip.mp4?{SECRET}#t=3") == (
        "https://cdn.test:8443/in/clip.mp4"
    )


def test_policy_from_settings() -> None:
    settings = Settings.model_validate(
        {
            "allow_private_urls": True,
            "max_input_bytes": 1234,
            "max_redirects": 2,
            "fetch_connect_timeout_seconds": 3.0,
            "fetch_read_timeout_seconds": 4.0,
            "fetch_total_timeout_seconds": 50.0,
        }
    )
    assert FetchPolicy.from_settings(settings) == FetchPolicy(
        allow_private=True,
        max_bytes=1234,
        max_redirects=2,
        connect_timeout=3.0,
        read_timeout=4.0,
        total_timeout=50.0,
    )


@pytest.mark.parametrize("override", [{"max_bytes": 0}, {"max_redirects": -1}, {"read_timeout": 0.0}])
def test_policy_rejects_nonsense_limits(override: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        policy(**override)


# --- downloads -----------------------------------------------------------------------------------------


async def test_fetch_streams_body_to_disk(origin: Origin, tmp_path: Path) -> None:
    dest = tmp_path / "input"
    result = await fetch_to_file(origin.url("/file"), dest, policy())
    assert dest.read_bytes() == BODY
    assert result.path == dest
    assert result.size == len(BODY)
    assert result.content_type == "video/mp4"
    assert result.final_url == origin.url("/file")


async def test_fetch_connects_to_checked_address_and_keeps_host(origin: Origin, tmp_path: Path) -> None:
    # public.test exists only in the test resolver, so success proves no second DNS lookup happened.
    calls: list[tuple[str, int]] = []
    result = await fetch_to_file(
        origin.url("/file", host="public.test"),
        tmp_path / "input",
        policy(allow_private=False),
        resolve=fake_dns(PUBLIC_DNS, calls),
        address_check=PUBLIC_ONLY,
    )
    assert result.size == len(BODY)
    assert calls == [("public.test", origin.port)]
    assert origin.seen.requests == [("/file", f"public.test:{origin.port}")]


async def test_fetch_404_is_an_input_error(origin: Origin, tmp_path: Path) -> None:
    dest = tmp_path / "input"
    with pytest.raises(InputError) as caught:
        await fetch_to_file(origin.url("/status/404"), dest, policy())
    assert caught.value.message == "the input URL returned HTTP 404"
    assert not dest.exists()


async def test_fetch_403_is_an_input_error(origin: Origin, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"^the input URL returned HTTP 403$"):
        await fetch_to_file(origin.url("/status/403"), tmp_path / "input", policy())


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_fetch_server_errors_are_transient(origin: Origin, tmp_path: Path, status: int) -> None:
    with pytest.raises(TransientError) as caught:
        await fetch_to_file(origin.url(f"/status/{status}"), tmp_path / "input", policy())
    assert caught.value.message == f"the input URL returned HTTP {status}"
    assert caught.value.kind == "transient"


@pytest.mark.parametrize(
    ("url", "scheme"), [("ftp://127.0.0.1/clip.mp4", "ftp"), ("file:///etc/passwd", "file")]
)
async def test_fetch_refuses_other_schemes(tmp_path: Path, url: str, scheme: str) -> None:
    dest = tmp_path / "input"
    with pytest.raises(InputError) as caught:
        await fetch_to_file(url, dest, policy())
    assert caught.value.message == f"the input URL must use http or https, not {scheme}"
    assert not dest.exists()


async def test_fetch_refuses_private_address_without_connecting(origin: Origin, tmp_path: Path) -> None:
    dest = tmp_path / "input"
    with pytest.raises(InputError) as caught:
        await fetch_to_file(origin.url("/file"), dest, policy(allow_private=False))
    assert caught.value.message == (
        "the input URL resolves to a private or reserved address (127.0.0.1 is loopback)"
    )
    assert origin.seen.requests == []
    assert not dest.exists()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://[::1]:9/clip.mp4", "::1"),
        ("http://0.0.0.0:9/clip.mp4", "0.0.0.0"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
        ("http://2130706433:9/clip.mp4", "127.0.0.1"),  # decimal 127.0.0.1, via getaddrinfo
    ],
)
async def test_fetch_refuses_other_private_forms(tmp_path: Path, url: str, shown: str) -> None:
    with pytest.raises(InputError, match=rf"private or reserved address \({shown} is "):
        await fetch_to_file(url, tmp_path / "input", policy(allow_private=False))


async def test_fetch_checks_every_address_from_the_system_resolver(origin: Origin, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"private or reserved address \(.* is loopback\)"):
        await fetch_to_file(
            origin.url("/file", host="localhost"), tmp_path / "in", policy(allow_private=False)
        )
    assert origin.seen.requests == []


async def test_fetch_follows_redirect_chain(origin: Origin, tmp_path: Path) -> None:
    result = await fetch_to_file(origin.url("/redirect/3"), tmp_path / "input", policy(max_redirects=4))
    assert (tmp_path / "input").read_bytes() == BODY
    assert result.final_url == origin.url("/file")
    assert origin.seen.paths() == ["/redirect/3", "/redirect/2", "/redirect/1", "/redirect/0", "/file"]


async def test_fetch_caps_redirects(origin: Origin, tmp_path: Path) -> None:
    dest = tmp_path / "input"
    with pytest.raises(InputError) as caught:
        await fetch_to_file(origin.url("/redirect/3"), dest, policy(max_redirects=2))
    assert caught.value.message == "the input URL redirected more than 2 times"
    assert origin.seen.paths() == ["/redirect/3", "/redirect/2", "/redirect/1"]
    assert not dest.exists()


@pytest.mark.parametrize(
    ("target", "shown"),
    [
        ("http://127.0.0.1:{port}/file", "127.0.0.1 is loopback"),
        ("http://metadata.test/latest/meta-data/", "169.254.169.254 is link-local"),
        ("https://intranet.test/admin", "10.1.2.3 is private"),
    ],
)
async def test_fetch_rechecks_redirect_targets(
    origin: Origin, tmp_path: Path, target: str, shown: str
) -> None:
    target = target.format(port=origin.port)
    start = origin.url(f"/to?url={target}", host="public.test")
    dest = tmp_path / "input"
    with pytest.raises(InputError) as caught:
        await fetch_to_file(
            start, dest, policy(allow_private=False), resolve=fake_dns(PUBLIC_DNS), address_check=PUBLIC_ONLY
        )
    assert caught.value.message == f"the input URL resolves to a private or reserved address ({shown})"
    assert [path.split("?")[0] for path in origin.seen.paths()] == ["/to"]
    assert not dest.exists()


async def test_fetch_refuses_redirect_to_other_scheme(origin: Origin, tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        await fetch_to_file(origin.url("/to?url=file:///etc/passwd"), tmp_path / "input", policy())
    assert caught.value.message == "the input URL's redirect target must use http or https, not file"


async def test_fetch_refuses_declared_oversize_before_download(origin: Origin, tmp_path: Path) -> None:
    # The server sends headers and then withholds the body for 5 s: only an early refusal is fast.
    dest = tmp_path / "input"
    started = time.monotonic()
    with pytest.raises(InputError) as caught:
        await fetch_to_file(origin.url("/declared-big"), dest, policy(max_bytes=1_000_000))
    assert time.monotonic() - started < 2
    assert caught.value.message == "the input is larger than the limit of 1000000 bytes"
    assert not dest.exists()


async def test_fetch_aborts_undeclared_oversize_and_removes_partial_file(
    origin: Origin, tmp_path: Path
) -> None:
    dest = tmp_path / "input"
    with pytest.raises(InputError) as caught:
        await fetch_to_file(origin.url("/chunked"), dest, policy(max_bytes=600_000))
    assert caught.value.message == "the input is larger than the limit of 600000 bytes"
    assert not dest.exists()
    assert list(tmp_path.iterdir()) == []


async def test_fetch_streams_chunked_body_within_limit(origin: Origin, tmp_path: Path) -> None:
    result = await fetch_to_file(origin.url("/chunked"), tmp_path / "input", policy(max_bytes=CHUNKED_TOTAL))
    assert result.size == CHUNKED_TOTAL
    assert (tmp_path / "input").read_bytes() == b"c" * CHUNKED_TOTAL


async def test_fetch_read_timeout_is_transient(origin: Origin, tmp_path: Path) -> None:
    dest = tmp_path / "input"
    started = time.monotonic()
    with pytest.raises(TransientError) as caught:
        await fetch_to_file(origin.url("/stall"), dest, policy(read_timeout=0.3))
    assert time.monotonic() - started < 1.5
    assert caught.value.message == f"the input URL {origin.url('/stall')} sent no data for 0.3 seconds"
    assert not dest.exists()


async def test_fetch_overall_deadline_is_transient(origin: Origin, tmp_path: Path) -> None:
    # /drip keeps sending, so only the overall deadline stops it.
    dest = tmp_path / "input"
    with pytest.raises(TransientError) as caught:
        await fetch_to_file(origin.url("/drip"), dest, policy(total_timeout=0.5))
    assert caught.value.message == (
        f"the input URL {origin.url('/drip')} did not finish downloading within 0.5 seconds"
    )
    assert not dest.exists()


async def test_fetch_connection_refused_is_transient(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/clip.mp4"
    with pytest.raises(TransientError, match=rf"^could not connect to the input URL {url} \("):
        await fetch_to_file(url, tmp_path / "input", policy())


async def test_fetch_unresolvable_host_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        await fetch_to_file("http://nowhere.test/a.mp4", tmp_path / "input", policy(), resolve=fake_dns({}))
    assert caught.value.message == "the input host could not be resolved"


async def test_fetch_temporary_dns_failure_is_transient(tmp_path: Path) -> None:
    async def dns_down(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    with pytest.raises(TransientError, match="could not be resolved right now"):
        await fetch_to_file("http://cdn.test/a.mp4", tmp_path / "input", policy(), resolve=dns_down)


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/status/404", InputError),
        ("/status/502", TransientError),
        ("/stall", TransientError),
        ("/redirect/3", InputError),
        ("/to?url=http://metadata.test/x%3FX-Amz-Signature%3Ddeadbeefsecret", InputError),
    ],
)
async def test_query_string_stays_out_of_errors_and_logs(
    origin: Origin, tmp_path: Path, caplog: pytest.LogCaptureFixture, path: str, error: type[Exception]
) -> None:
    # Production levels: INFO overall (httpx logs every request at INFO), DEBUG for the fetcher.
    # httpcore's DEBUG wire traces print raw response headers and are for local debugging only.
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="taskkit.fetch")
    separator = "&" if "?" in path else "?"
    url = origin.url(f"{path}{separator}{SECRET}", host="public.test")
    with pytest.raises(error) as caught:
        await fetch_to_file(
            url,
            tmp_path / "input",
            policy(allow_private=False, read_timeout=0.3, max_redirects=1),
            resolve=fake_dns(PUBLIC_DNS),
            address_check=PUBLIC_ONLY,
        )
    assert origin.seen.requests, "the request must have reached the server"
    assert "deadbeefsecret" not in str(caught.value)
    assert "deadbeefsecret" not in caplog.text
    assert "HTTP Request: GET" in caplog.text  # httpx did log the request, without the query


async def test_connection_error_names_url_without_query(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/in/clip.mp4"
    with pytest.raises(TransientError) as caught:
        await fetch_to_file(f"{url}?{SECRET}", tmp_path / "input", policy())
    assert url in caught.value.message
    assert "deadbeefsecret" not in caught.value.message


# --- TLS: the connection goes to the checked IP, the certificate is checked against the name ---------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A throwaway CA and a leaf certificate for public.test, made with the openssl CLI."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    root = tmp_path_factory.mktemp("tls")
    (root / "leaf.ext").write_text(
        "subjectAltName=DNS:public.test\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
    )
    ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
    commands = [
        f"openssl req -x509 {ec} -days 2 -subj /CN=TestCA -keyout ca.key -out ca.pem"
        " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign",
        f"openssl req -new {ec} -subj /CN=public.test -keyout leaf.key -out leaf.csr",
        "openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2"
        " -extfile leaf.ext -out leaf.pem",
    ]
    for command in commands:
        subprocess.run(shlex.split(command), cwd=root, check=True, capture_output=True, timeout=30)
    return {"ca": root / "ca.pem", "cert": root / "leaf.pem", "key": root / "leaf.key"}


@pytest.fixture(scope="module")
def _tls_server(tls_files: dict[str, Path]) -> Iterator[tuple[_Server, Origin]]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls_files["cert"], tls_files["key"])
    yield from _serve(context)


@pytest.fixture
def tls_origin(
    _tls_server: tuple[_Server, Origin], tls_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> Origin:
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files["ca"]))
    server, origin = _tls_server
    with server.seen.lock:
        server.seen.requests.clear()
    return origin


async def test_https_pins_address_and_verifies_hostname(tls_origin: Origin, tmp_path: Path) -> None:
    result = await fetch_to_file(
        tls_origin.url("/file", host="public.test"),
        tmp_path / "input",
        policy(allow_private=False),
        resolve=fake_dns(PUBLIC_DNS),
        address_check=PUBLIC_ONLY,
    )
    assert (tmp_path / "input").read_bytes() == BODY
    assert result.final_url == tls_origin.url("/file", host="public.test")
    assert tls_origin.seen.requests == [("/file", f"public.test:{tls_origin.port}")]


async def test_https_refuses_certificate_for_another_name(tls_origin: Origin, tmp_path: Path) -> None:
    # other.test reaches the same server, whose certificate only names public.test.
    with pytest.raises(InputError) as caught:
        await fetch_to_file(
            tls_origin.url("/file", host="other.test"),
            tmp_path / "input",
            policy(),
            resolve=fake_dns({"other.test": "127.0.0.1"}),
        )
    url = tls_origin.url("/file", host="other.test")
    assert caught.value.message.startswith(
        f"the TLS certificate of the input URL {url} could not be verified"
    )
    assert "other.test" in caught.value.message.split("(", 1)[1]
    assert tls_origin.seen.requests == []
