"""A NATS JetStream cluster on loopback: the nodes' ports, their argv, and waiting for a leader.

Every node runs ``deploy/nats/nats.conf`` (the file a deployment uses), with what differs per node
on the command line, so the stack exercises the same cluster settings as production. A cluster is
ready for the services once every node names the same JetStream meta leader: before that, creating
a stream fails, and a service would exit during start-up.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

CONFIG = Path(__file__).resolve().parent.parent / "deploy" / "nats" / "nats.conf"
_POLL_TIMEOUT_S = 2.0  # one /jsz request
_POLL_INTERVAL_S = 0.1


@dataclass(frozen=True)
class NatsNode:
    """One node's name (its process name in the stack too) and loopback ports."""

    name: str
    client_port: int
    cluster_port: int
    monitor_port: int

    @property
    def client_url(self) -> str:
        return f"nats://127.0.0.1:{self.client_port}"

    @property
    def route_url(self) -> str:
        return f"nats://127.0.0.1:{self.cluster_port}"


def plan(count: int, first_client_port: int, port: Callable[[], int]) -> list[NatsNode]:
    """``count`` nodes named ``nats-1``…; the first listens for clients on ``first_client_port``,
    every other port comes from ``port()``."""
    return [
        NatsNode(f"nats-{i}", first_client_port if i == 1 else port(), port(), port())
        for i in range(1, count + 1)
    ]


def client_urls(nodes: Sequence[NatsNode]) -> str:
    """``TRANSMUTE_NATS_URL`` for a cluster: every node, comma-separated."""
    return ",".join(node.client_url for node in nodes)


def replicas(nodes: Sequence[NatsNode]) -> int:
    """``TRANSMUTE_NATS_REPLICAS``: three copies at most (JetStream's own limit is five; three
    survive one node's loss at a third of five's write cost)."""
    return min(3, len(nodes))


def node_argv(binary: str, node: NatsNode, nodes: Sequence[NatsNode], store: Path) -> list[str]:
    """The node's command line: the shared config file, then its own name, ports and store."""
    return [
        binary,
        "-c", str(CONFIG),
        "-n", node.name,
        "-a", "127.0.0.1",
        "-p", str(node.client_port),
        "-m", str(node.monitor_port),
        "--cluster", node.route_url,
        "--routes", ",".join(peer.route_url for peer in nodes),
        "-sd", str(store),
    ]  # fmt: skip


def meta_leader(monitor_port: int) -> str:
    """The JetStream meta leader one node reports ("" while there is none or it does not answer)."""
    try:
        response = httpx.get(f"http://127.0.0.1:{monitor_port}/jsz", timeout=_POLL_TIMEOUT_S)
        response.raise_for_status()
        return str((response.json().get("meta_cluster") or {}).get("leader") or "")
    except (httpx.HTTPError, ValueError):
        return ""


def wait_ready(nodes: Sequence[NatsNode], *, timeout: float) -> None:
    """Block until every node names the same meta leader (all are routed and JetStream is up)."""
    deadline = time.monotonic() + timeout
    leaders: list[str] = []
    while time.monotonic() < deadline:
        leaders = [meta_leader(node.monitor_port) for node in nodes]
        if leaders[0] and len(set(leaders)) == 1:
            return
        time.sleep(_POLL_INTERVAL_S)
    raise RuntimeError(f"the NATS cluster elected no common meta leader within {timeout:.0f} s: {leaders}")
