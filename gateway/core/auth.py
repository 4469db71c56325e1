"""API keys → projects. Only SHA-256 hashes are kept; lookups compare in constant time.

Keys come from ``TRANSMUTE_API_KEY`` (one key for project ``default``) and/or
``TRANSMUTE_API_KEYS_FILE`` (JSON ``{"<key>": "<project>", ...}``).
"""

from __future__ import annotations

import hashlib
import hmac
import json

from taskkit.config import Settings
from taskkit.errors import Unauthenticated
from taskkit.rpc import check_project

DEV_PROJECT = "default"


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class KeyRing:
    def __init__(self, keys: dict[str, str]) -> None:
        self._entries = [(_digest(key), check_project(project)) for key, project in keys.items()]

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        keys: dict[str, str] = {}
        if settings.api_keys_file is not None:
            loaded = json.loads(settings.api_keys_file.read_text())
            if not isinstance(loaded, dict):
                raise SystemExit("TRANSMUTE_API_KEYS_FILE must hold a JSON object of key -> project")
            keys.update({str(k): str(v) for k, v in loaded.items()})
        if settings.api_key is not None:
            keys[settings.api_key.get_secret_value()] = DEV_PROJECT
        if not keys:
            raise SystemExit("No API keys: set TRANSMUTE_API_KEY or TRANSMUTE_API_KEYS_FILE")
        return cls(keys)

    def project_for(self, authorization: str | None) -> str:
        """The project of a ``Bearer`` key; 401 errors name what is wrong."""
        if not authorization:
            raise Unauthenticated("Send your API key as 'Authorization: Bearer <key>'.", kind="token_missing")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("The Authorization header must be 'Bearer <key>'.", kind="token_missing")
        digest = _digest(token.strip())
        found = None
        for known, project in self._entries:
            if hmac.compare_digest(known, digest):
                found = project
        if found is None:
            raise Unauthenticated("The API key is not valid.", kind="token_invalid")
        return found
