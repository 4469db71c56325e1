"""A stack of the test's own and a client of its API, for the modules that need a stack shaped
differently from the session's (scaled, clustered, with tracks): written once, so every such
fixture starts and stops its processes the same way.

    @pytest.fixture(scope="module")
    def cluster(tmp_path_factory):
        with running_stack(tmp_path_factory.mktemp("cluster"), "cluster", nats_nodes=3) as stack:
            yield stack

    with api_client(stack) as api:
        api.post("/tasks", json=...)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from stack import Stack, StackConfig


@contextmanager
def running_stack(root: Path, label: str, **fields: Any) -> Iterator[Stack]:
    """``StackConfig.fresh(root, label, **fields)`` started, and stopped on the way out (also when
    its start fails part-way)."""
    with Stack(StackConfig.fresh(root, label, **fields)) as stack:
        yield stack


@contextmanager
def api_client(stack: Stack, *, timeout: float = 30.0) -> Iterator[httpx.Client]:
    """An HTTP client of the stack's front door with its API key as the bearer token."""
    headers = {"Authorization": f"Bearer {stack.config.api_key}"}
    with httpx.Client(base_url=stack.base_url, headers=headers, timeout=timeout) as client:
        yield client
