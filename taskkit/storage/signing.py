"""Signed, expiring links to stored files: ``/files/<expiry>/<signature>/<key>``.

The signature is ``base64url(HMAC-SHA256(secret, "<method>\\n<expiry>\\n<grant>"))`` where
``grant`` is either the file's key or a folder above it written with a trailing ``/`` (so a grant
for the file ``box`` can never pass for the folder ``box/``). Putting expiry and signature in the path
(not the query) means a signed folder grant also covers the relative references inside an
HLS/DASH playlist: ``720p/seg1.ts`` resolves under the same ``/files/<expiry>/<signature>/``.
Verification tries the key and each folder above it, so one link format serves both.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from urllib.parse import quote

from taskkit.errors import InvalidRequest

FILES_ROUTE = "/files"
_SEGMENT = re.compile(r"^[A-Za-z0-9._~@+=,-][A-Za-z0-9 ._~@+=,-]*$")
# S3 keys are at most 1,024 bytes; a file name at most 255 on local disks, and FileStorage stages
# each file as ".<name>.<32 hex>.part" beside it.
MAX_KEY_CHARS = 1024
MAX_SEGMENT_CHARS = 200


def check_key(key: str) -> str:
    """Reject keys that could escape the storage root or confuse URL parsing."""
    parts = key.split("/")
    if not key or any(p in ("", ".", "..") or not _SEGMENT.match(p) for p in parts):
        raise InvalidRequest(f"'{key}' is not a valid file path: use letters, digits, '.', '-', '_' and '/'.")
    if len(key) > MAX_KEY_CHARS or max(len(p) for p in parts) > MAX_SEGMENT_CHARS:
        raise InvalidRequest(
            f"'{key[:40]}…' is too long for a file path: at most {MAX_KEY_CHARS} characters, "
            f"{MAX_SEGMENT_CHARS} between slashes."
        )
    return key


def signature(secret: str, method: str, expiry: int, prefix: str) -> str:
    message = f"{method.lower()}\n{expiry}\n{prefix}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def signed_path(secret: str, key: str, *, expiry: int, method: str = "get", prefix: str | None = None) -> str:
    """The path of a link to ``key`` signed for the folder ``prefix`` (default: the key itself)."""
    grant = key if prefix is None else prefix.rstrip("/") + "/"
    sig = signature(secret, method, expiry, grant)
    return f"{FILES_ROUTE}/{expiry}/{sig}/{quote(key)}"


def signed_url(
    base_url: str, secret: str, key: str, *, ttl: int, method: str = "get", prefix: str | None = None
) -> str:
    """A link to ``key`` valid for ``ttl`` seconds; with ``prefix``, a grant for that whole folder."""
    return base_url + signed_path(secret, key, expiry=int(time.time()) + ttl, method=method, prefix=prefix)


def _grants(key: str) -> list[str]:
    """The key itself, then each folder above it (``a/b/``, ``a/``)."""
    parts = key.split("/")
    return [key] + ["/".join(parts[:i]) + "/" for i in range(len(parts) - 1, 0, -1)]


def granted(
    secret: str, method: str, expiry: int, sig: str, key: str, *, now: float | None = None
) -> str | None:
    """What ``sig`` grants ``method`` on: ``key`` itself or a folder above it (``a/b/``); None
    when it grants nothing or has expired. (The gateway serves a folder grant itself, so that
    relative references resolve under the same link; a grant for the file alone may be redirected
    to the storage backend's own link.)"""
    if expiry < (time.time() if now is None else now):
        return None
    matches = (g for g in _grants(key) if hmac.compare_digest(signature(secret, method, expiry, g), sig))
    return next(matches, None)


def verify(secret: str, method: str, expiry: int, sig: str, key: str, *, now: float | None = None) -> bool:
    """True when ``sig`` grants ``method`` on ``key`` (or a folder above it) and has not expired."""
    return granted(secret, method, expiry, sig, key, now=now) is not None
