"""A real nats-server for one test: free port, temp store, JetStream on."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

from stack import free_port, nats_server_binary, wait_port
from taskkit.records import Bus, connect


@contextmanager
def running_nats(store: Path) -> Iterator[str]:
    """A nats-server storing under ``store``; yields its URL, stops it afterwards."""
    port = free_port()
    proc = subprocess.Popen(
        [nats_server_binary(), "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(store)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port, proc, "nats-server")
        yield f"nats://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@asynccontextmanager
async def running_bus(store: Path) -> AsyncIterator[Bus]:
    """A nats-server and a bus connected to it with the layout declared."""
    with running_nats(store) as url:
        bus = await connect(url, name="test")
        try:
            yield bus
        finally:
            await bus.close()
