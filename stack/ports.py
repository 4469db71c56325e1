"""Loopback ports: a free one for each process, and waiting until a started process serves on its own.

Every process of a stack gets a port the kernel picked (so stacks, tests and benchmarks run side
by side), and nothing is handed on to the next process until the one before it answers: a service
that starts before its dependency would exit during start-up.
"""

from __future__ import annotations

import socket
import subprocess
import time

import httpx

START_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} during start-up")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not open port {port} within {START_TIMEOUT_S:.0f} s")


def wait_healthy(url: str, what: str) -> None:
    """Until ``url`` answers 200 (a refused or dropped connection is retried), within the start-up
    timeout."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            if httpx.get(url, timeout=5.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not answer {url} with 200 within {START_TIMEOUT_S:.0f} s")
        time.sleep(0.1)
