"""The optional LLM summary against a local stand-in for an OpenAI-compatible chat endpoint.

The stand-in is named as such: a real endpoint cannot run here. It records what it was sent and
answers as configured (a good reply, a slow one, a non-JSON one, an error status), so the tests
check the request the service makes and that every failure keeps the offline summary.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from intelligence_service import llm
from taskkit.config import Settings


class StandInChatEndpoint:
    """A stand-in for an OpenAI-compatible ``/v1/chat/completions`` endpoint."""

    def __init__(self) -> None:
        self.reply: Any = {
            "title": "Coffee, volcanoes and cars",
            "description": "A talk. It has three parts.",
        }
        self.status = 200
        self.delay_s = 0.0
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                endpoint.requests.append((dict(self.headers), body))
                time.sleep(endpoint.delay_s)
                content = endpoint.reply if isinstance(endpoint.reply, str) else json.dumps(endpoint.reply)
                data = json.dumps(
                    {"choices": [{"message": {"role": "assistant", "content": content}}]}
                ).encode()
                self.send_response(endpoint.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.handle_error = lambda *_: None  # type: ignore[method-assign]  # a client that timed out
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/chat/completions"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def endpoint() -> Iterator[StandInChatEndpoint]:
    served = StandInChatEndpoint()
    yield served
    served.server.shutdown()


def settings_for(endpoint: StandInChatEndpoint, **overrides: Any) -> Settings:
    return Settings(llm_url=endpoint.url, llm_model="small-model", llm_api_key="sk-test", **overrides)


async def test_the_endpoint_writes_title_and_description(endpoint: StandInChatEndpoint) -> None:
    answer = await llm.title_and_description(
        "Coffee brewing starts with fresh beans.", settings_for(endpoint)
    )
    assert answer == ("Coffee, volcanoes and cars", "A talk. It has three parts.")
    headers, body = endpoint.requests[0]
    assert headers["Authorization"] == "Bearer sk-test"
    assert body["model"] == "small-model" and body["temperature"] == 0
    assert body["messages"][-1] == {"role": "user", "content": "Coffee brewing starts with fresh beans."}


async def test_a_long_transcript_is_cut_before_sending(endpoint: StandInChatEndpoint) -> None:
    await llm.title_and_description("word " * 10_000, settings_for(endpoint))
    assert len(endpoint.requests[0][1]["messages"][-1]["content"]) == llm.MAX_TRANSCRIPT_CHARS


@pytest.mark.parametrize(
    ("change", "value"),
    [
        ("reply", "this is not JSON"),
        ("reply", {"title": "only a title"}),
        ("reply", {"title": "", "description": ""}),
        ("status", 500),
        ("delay_s", 2.0),
    ],
)
async def test_any_failure_keeps_the_offline_summary(
    endpoint: StandInChatEndpoint, change: str, value: Any
) -> None:
    setattr(endpoint, change, value)
    assert await llm.title_and_description("text", settings_for(endpoint, llm_timeout_seconds=0.5)) is None


async def test_unconfigured_or_unreachable_endpoints_are_skipped(endpoint: StandInChatEndpoint) -> None:
    assert await llm.title_and_description("text", Settings()) is None
    endpoint.server.shutdown()
    endpoint.server.server_close()
    assert await llm.title_and_description("text", settings_for(endpoint, llm_timeout_seconds=1)) is None
