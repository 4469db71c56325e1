"""The API's error contract, checked the same way by every test: a code and ``{kind, message}``."""

from __future__ import annotations

from typing import Any

import httpx


def assert_error(response: httpx.Response, status: int, kind: str, *fragments: str) -> str:
    """Check an error response's code and exact body shape; return its message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body: Any = response.json()
    assert isinstance(body, dict) and set(body) == {"kind", "message"}, body
    assert body["kind"] == kind, body
    message = body["message"]
    assert isinstance(message, str) and message.strip(), body
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message
