"""The whole local stack as child processes: nats-server (JetStream), media_service,
intelligence_service, tracks_service, the gateway and, scaled, envoy.

``make run`` uses it for the development stack, the end-to-end tests and the benchmarks use it to
own their infrastructure (free ports, a temp store), so all three run the same real parts. This
module is the public face; the code lives in one module per concern:

- ``stack.config``: ``StackConfig``, what a stack is made of (the one-of-each stack, or scaled).
- ``stack.processes``: ``Stack``, that config as running processes (start, kill, pause, restart, stop).
- ``stack.ports``: free loopback ports, and waiting until a process serves on its own.
- ``stack.supervisor`` and ``stack.restarts``: ``python -m stack`` restarts what dies, with backoff.
- ``stack.nats_cluster``, ``stack.envoy``, ``stack.seaweed``, ``stack.binaries``: the servers.
"""

from __future__ import annotations

from stack.binaries import nats_server_binary
from stack.config import StackConfig
from stack.ports import free_port, wait_healthy, wait_port
from stack.processes import PIDS_FILE, Stack
from stack.restarts import RestartPolicy
from stack.supervisor import Supervisor

__all__ = [
    "PIDS_FILE",
    "RestartPolicy",
    "Stack",
    "StackConfig",
    "Supervisor",
    "free_port",
    "nats_server_binary",
    "wait_healthy",
    "wait_port",
]
