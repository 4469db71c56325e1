"""Download a task's input from a user-supplied URL without opening an SSRF hole.

The URL comes from whoever created the task, so the fetcher must not become a way to reach the
deployment's own network (cloud metadata at 169.254.169.254, the NATS port, an admin panel on
10.x). The rules, applied to the first URL and again to every redirect hop:

* only ``http`` and ``https`` (:func:`check_scheme`);
* the host is resolved once, and every resolved address must be public (:func:`check_address`)
  unless ``FetchPolicy.allow_private`` is set;
* the connection goes to an address that was checked, never to a second DNS answer, so a host
  that answers "public" to the check and "private" to the connect (DNS rebinding) gets nowhere.

How the pinning works with httpx: the request URL's host is replaced by the checked IP, so httpx
opens its TCP connection there and resolves nothing itself. The original ``Host`` header is sent
explicitly, and for https the original hostname is passed as the ``sni_hostname`` request
extension, which httpcore uses as the TLS ``server_hostname``: SNI carries the name and the
certificate is verified against the name, not the IP. Each hop gets its own client, so a TLS
connection verified for one hostname is never reused for another that shares its IP. Clients
ignore proxy variables and ``.netrc`` (a proxy would resolve the name again); ``SSL_CERT_FILE`` /
``SSL_CERT_DIR`` are still honoured for the trusted CA bundle.

Tests (and only tests) may pass ``resolve`` and ``address_check`` to :func:`fetch_to_file`: there
is no public host to test against, so a test maps ``public.test`` to ``127.0.0.1`` and admits that
one (hostname, address) pair, while everything else still goes through :func:`check_address`.
They are keyword arguments of the function, not settings, so no configuration can turn them on.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import os
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from taskkit.errors import InputError, TransientError, TransmuteError

if TYPE_CHECKING:
    from taskkit.config import Settings

__all__ = [
    "AddressCheck",
    "FetchPolicy",
    "FetchResult",
    "IPAddress",
    "Resolver",
    "check_address",
    "check_scheme",
    "check_url_literal",
    "fetch_to_file",
    "redact_url",
]

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: ``(host, port) -> addresses as strings``; the default uses the event loop's getaddrinfo.
Resolver = Callable[[str, int], Awaitable[list[str]]]
#: ``(hostname, address) -> None``, raising :class:`InputError` to refuse the address.
AddressCheck = Callable[[str, IPAddress], None]

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# 4xx statuses that say "try again later" rather than "this input is wrong".
_RETRYABLE_CLIENT_STATUSES = frozenset({408, 429})
_CHUNK_BYTES = 256 * 1024
_USER_AGENT = "Transmute-Fetch/1.0"

_CARRIER_GRADE_NAT = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")


@dataclass(frozen=True)
class FetchPolicy:
    """The limits one download runs under; build it with :meth:`from_settings` in services."""

    allow_private: bool
    max_bytes: int
    max_redirects: int
    connect_timeout: float
    read_timeout: float
    total_timeout: float

    def __post_init__(self) -> None:
        if self.max_bytes <= 0 or self.max_redirects < 0:
            raise ValueError("max_bytes must be positive and max_redirects not negative")
        if min(self.connect_timeout, self.read_timeout, self.total_timeout) <= 0:
            raise ValueError("fetch timeouts must be positive")

    @classmethod
    def from_settings(cls, settings: Settings) -> FetchPolicy:
        """The deployment's policy; the overall deadline is the task timeout, as the download is part
        of the task."""
        return cls(
            allow_private=settings.allow_private_urls,
            max_bytes=settings.max_input_bytes,
            max_redirects=settings.max_redirects,
            connect_timeout=settings.fetch_connect_timeout_seconds,
            read_timeout=settings.fetch_read_timeout_seconds,
            total_timeout=settings.fetch_total_timeout_seconds,
        )


@dataclass(frozen=True)
class FetchResult:
    """A completed download.

    ``final_url`` is the URL the body came from after redirects, query string included: pass it
    through :func:`redact_url` before logging it or showing it to anyone.
    """

    path: Path
    size: int
    content_type: str | None
    final_url: str


def redact_url(url: str | httpx.URL) -> str:
    """``url`` without credentials, query string and fragment, fit for logs and error messages.

    Query strings often carry signatures (pre-signed S3 links) that grant access to the input.
    """
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
        return str(parsed.copy_with(userinfo=b"", query=None, fragment=None))
    except (httpx.InvalidURL, TypeError, ValueError):
        return "<unparseable URL>"


class _RedactHttpxUrls(logging.Filter):
    """Strip query strings from the URLs httpx logs ("HTTP Request: GET <url> ...", level INFO).

    Without it every fetch would write the input's signature into the logs at the default level.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_url(a) if isinstance(a, httpx.URL) else a for a in record.args)
        return True


logging.getLogger("httpx").addFilter(_RedactHttpxUrls())


def check_scheme(url: str) -> None:
    """Refuse anything but an absolute ``http``/``https`` URL with a host.

    Cheap and offline, so the API can reject a bad input URL with a 400 at task creation instead
    of queueing a task that can only fail.
    """
    _parse_http_url(url, "the input URL")


def check_url_literal(url: str, *, allow_private: bool) -> None:
    """:func:`check_scheme`, and refuse a host that is a private address written out (``10.0.0.5``,
    ``[::1]``) or a ``localhost`` name: the checks that need no DNS, so they can answer at
    creation. Other names are resolved and checked when the input is fetched."""
    host = _parse_http_url(url, "the input URL").host.rstrip(".").lower()
    if allow_private:
        return
    if host == "localhost" or host.endswith(".localhost"):
        raise InputError(f"the input URL names a loopback host ({host})")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return
    check_address(ip, allow_private=False)


def check_address(ip: IPAddress, *, allow_private: bool) -> None:
    """Refuse an address the deployment must not connect to on a user's behalf.

    Refused: loopback, private (RFC 1918, unique-local, site-local), link-local (cloud metadata),
    multicast, reserved, unspecified, carrier-grade NAT, documentation/benchmark ranges and
    anything else Python does not call global. IPv6 forms that embed an IPv4 address
    (IPv4-mapped ``::ffff:a.b.c.d``, 6to4 ``2002::/16``, NAT64 ``64:ff9b::/96``) are judged by the
    IPv4 address they reach.
    """
    if allow_private:
        return
    reason = _non_public_reason(ip)
    if reason is not None:
        raise InputError(f"the input URL resolves to a private or reserved address ({ip} is {reason})")


def _non_public_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public unicast address, or None when it is."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64_WELL_KNOWN:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return _non_public_reason(embedded)
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CARRIER_GRADE_NAT:
        return "carrier-grade NAT"
    if ip.is_private or (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local):
        return "private"
    if ip.is_reserved or not ip.is_global:
        return "reserved"
    return None


async def fetch_to_file(
    url: str,
    dest: Path,
    policy: FetchPolicy,
    *,
    resolve: Resolver | None = None,
    address_check: AddressCheck | None = None,
) -> FetchResult:
    """Download ``url`` into ``dest`` under ``policy``, following redirects by hand.

    The body is streamed to ``dest`` in chunks; on any failure (including cancellation) a
    partially written ``dest`` is removed. Raises :class:`InputError` when the input itself is
    unusable (bad scheme, unresolvable host, refused address, 4xx, too big, too many redirects,
    untrusted certificate) and :class:`TransientError` when a retry may succeed (5xx, 408/429,
    connection failures, timeouts, temporary DNS failure). Messages never contain the query string.

    ``resolve`` replaces getaddrinfo and ``address_check`` replaces
    ``check_address(ip, allow_private=policy.allow_private)``; both exist for tests only (see the
    module docstring), and production callers pass neither.
    """
    if address_check is None:

        def address_check(host: str, ip: IPAddress) -> None:
            check_address(ip, allow_private=policy.allow_private)

    fetch = _Fetch(policy, dest, resolve or _system_resolve, address_check)
    try:
        async with asyncio.timeout(policy.total_timeout) as deadline:
            return await fetch.run(url)
    except TimeoutError:
        if not deadline.expired():
            raise
        raise TransientError(
            f"the input URL {redact_url(fetch.current_url or url)} did not finish downloading "
            f"within {policy.total_timeout:g} seconds"
        ) from None


async def _system_resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _parse_http_url(url: str | httpx.URL, what: str) -> httpx.URL:
    """Parse ``url`` and require http(s) with a host; ``what`` names it in the error message."""
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise InputError(f"{what} is not a valid URL") from exc
    if not parsed.scheme:
        raise InputError(f"{what} must be an absolute http or https URL")
    if parsed.scheme not in ("http", "https"):
        raise InputError(f"{what} must use http or https, not {parsed.scheme}")
    if not parsed.raw_host:
        raise InputError(f"{what} has no host")
    return parsed


@functools.cache
def _ssl_context(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    """Loading the CA bundle costs ~50 ms of CPU, so build one context per trust configuration
    (SSL_CERT_FILE/SSL_CERT_DIR, which httpx honours) and share it; contexts are safe to share."""
    return httpx.create_ssl_context()


class _Fetch:
    """The state of one download: the hop being fetched and the shared TLS context."""

    def __init__(self, policy: FetchPolicy, dest: Path, resolve: Resolver, address_check: AddressCheck):
        self.policy = policy
        self.dest = dest
        self.resolve = resolve
        self.address_check = address_check
        self.current_url: httpx.URL | None = None
        self.ssl_context: ssl.SSLContext | None = None

    async def run(self, url: str) -> FetchResult:
        self.current_url = _parse_http_url(url, "the input URL")
        self.ssl_context = await asyncio.to_thread(
            _ssl_context, os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")
        )
        redirects = 0
        while True:
            async with self._open(self.current_url) as response:
                status = response.status_code
                if status not in _REDIRECT_STATUSES:
                    _raise_for_status(status)
                    return await self._save(response)
                if redirects >= self.policy.max_redirects:
                    raise InputError(f"the input URL redirected more than {self.policy.max_redirects} times")
                location = response.headers.get("location")
                if not location:
                    raise InputError(f"the input URL returned HTTP {status} without a Location header")
                try:
                    target = self.current_url.join(location)
                except httpx.InvalidURL as exc:
                    raise InputError("the input URL redirected to an invalid URL") from exc
                next_url = _parse_http_url(target, "the input URL's redirect target")
                logger.debug(
                    "input %s redirected (%d) to %s",
                    redact_url(self.current_url),
                    status,
                    redact_url(next_url),
                )
                self.current_url = next_url
                redirects += 1

    async def _addresses(self, url: httpx.URL) -> list[IPAddress]:
        """Resolve ``url``'s host once and check every address; any refused address refuses all."""
        host = url.raw_host.decode("ascii")
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            answers = [host]
        else:
            try:
                answers = await self.resolve(host, _port(url))
            except socket.gaierror as exc:
                if exc.errno == socket.EAI_AGAIN:
                    raise TransientError("the input host could not be resolved right now") from exc
                raise InputError("the input host could not be resolved") from exc
            if not answers:
                raise InputError("the input host could not be resolved")
        addresses: list[IPAddress] = []
        for answer in answers:
            ip = ipaddress.ip_address(answer)
            if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
                ip = ip.ipv4_mapped  # connect to exactly the IPv4 address that gets checked
            self.address_check(host, ip)
            if ip not in addresses:
                addresses.append(ip)
        return addresses

    @asynccontextmanager
    async def _open(self, url: httpx.URL) -> AsyncIterator[httpx.Response]:
        """Send GET for ``url`` to its checked addresses in turn; yield the first streamed response."""
        host = url.raw_host.decode("ascii")
        headers = {"Host": url.netloc.decode("ascii"), "Accept-Encoding": "identity"}
        extensions = {"sni_hostname": host} if url.scheme == "https" else {}
        last_error: httpx.TransportError | None = None
        for address in await self._addresses(url):
            pinned = url.copy_with(host=str(address))
            logger.debug("fetching input %s from %s", redact_url(url), address)
            async with self._client() as client:
                request = client.build_request("GET", pinned, headers=headers, extensions=extensions)
                try:
                    response = await client.send(request, stream=True)
                except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                    last_error = exc  # try the host's next address
                    continue
                except httpx.TransportError as exc:
                    raise self._transport_error(exc) from exc
                try:
                    yield response
                finally:
                    await response.aclose()
                return
        assert last_error is not None  # _addresses returns at least one address
        raise self._transport_error(last_error) from last_error

    def _client(self) -> httpx.AsyncClient:
        policy = self.policy
        assert self.ssl_context is not None  # set by run() before the first request
        return httpx.AsyncClient(
            verify=self.ssl_context,
            trust_env=False,
            follow_redirects=False,
            headers={"User-Agent": _USER_AGENT},
            timeout=httpx.Timeout(
                connect=policy.connect_timeout,
                read=policy.read_timeout,
                write=policy.read_timeout,
                pool=policy.connect_timeout,
            ),
        )

    async def _save(self, response: httpx.Response) -> FetchResult:
        """Stream the body to ``dest``, refusing it as soon as it is known to exceed the limit."""
        limit = self.policy.max_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _too_large(limit)
        size = 0
        file = await asyncio.to_thread(self.dest.open, "wb")
        try:
            try:
                async for chunk in response.aiter_bytes(_CHUNK_BYTES):
                    size += len(chunk)
                    if size > limit:
                        raise _too_large(limit)
                    await asyncio.to_thread(file.write, chunk)
            finally:
                await asyncio.to_thread(file.close)
        except httpx.TransportError as exc:
            self.dest.unlink(missing_ok=True)
            raise self._transport_error(exc) from exc
        except httpx.DecodingError as exc:
            self.dest.unlink(missing_ok=True)
            raise InputError("the input URL sent a body that could not be decoded") from exc
        except BaseException:
            self.dest.unlink(missing_ok=True)
            raise
        return FetchResult(
            path=self.dest,
            size=size,
            content_type=response.headers.get("content-type"),
            final_url=str(self.current_url),
        )

    def _transport_error(self, exc: httpx.TransportError) -> TransmuteError:
        """Translate an httpx failure into a one-sentence error naming the URL without its query."""
        where = redact_url(self.current_url) if self.current_url is not None else "the input URL"
        reason = str(exc) or type(exc).__name__
        verify_error = _certificate_error(exc)
        if verify_error is not None:
            return InputError(
                f"the TLS certificate of the input URL {where} could not be verified "
                f"({verify_error.verify_message or verify_error.reason})"
            )
        if isinstance(exc, httpx.ConnectTimeout):
            return TransientError(
                f"could not connect to the input URL {where} within {self.policy.connect_timeout:g} seconds"
            )
        if isinstance(exc, httpx.ConnectError):
            return TransientError(f"could not connect to the input URL {where} ({reason})")
        if isinstance(exc, httpx.ReadTimeout):
            return TransientError(
                f"the input URL {where} sent no data for {self.policy.read_timeout:g} seconds"
            )
        return TransientError(f"the download of the input URL {where} failed ({reason})")


def _certificate_error(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification failure behind ``exc``, if that is what it is."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _raise_for_status(status: int) -> None:
    if 200 <= status < 300:
        return
    message = f"the input URL returned HTTP {status}"
    if status >= 500 or status in _RETRYABLE_CLIENT_STATUSES:
        raise TransientError(message)
    raise InputError(message)


def _too_large(limit: int) -> InputError:
    return InputError(f"the input is larger than the limit of {limit} bytes")


def _port(url: httpx.URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)
