"""A small Server-Sent Events reader: the stream as a list of (id, event, data) until it closes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Event:
    id: str | None
    topic: str
    data: Any


def read_sse(
    client: httpx.Client, path: str, *, headers: dict[str, str] | None = None, timeout: float = 60.0
) -> list[Event]:
    """Every event of the stream at ``path`` (``data`` parsed as JSON) until the server closes it."""
    events: list[Event] = []
    fields: dict[str, str] = {}
    with client.stream("GET", path, headers=headers, timeout=timeout) as response:
        assert response.status_code == 200, response.read()
        for line in response.iter_lines():
            if line == "":
                if "data" in fields:
                    events.append(
                        Event(fields.get("id"), fields.get("event", "message"), json.loads(fields["data"]))
                    )
                fields = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
    return events
