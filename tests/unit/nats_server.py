"""A real nats-server for one test: free port, temp store, JetStream on."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from stack import free_port, nats_server_binary, wait_port
from taskkit.jetstream import Bus, connect


@asynccontextmanager
async def running_bus(store: Path) -> AsyncIterator[Bus]:
    port = free_port()
    proc = subprocess.Popen(
        [nats_server_binary(), "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(store)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port, proc, "nats-server")
        bus = await connect(f"nats://127.0.0.1:{port}", name="test")
        try:
            yield bus
        finally:
            await bus.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
