"""What a stack is made of: ``StackConfig``, one plain dataclass, so a test, a benchmark and
``python -m stack`` each describe their stack in one expression and ``Stack`` only carries it out.

The defaults are the one-of-each stack on free ports, without envoy. A scaled stack (``make
run-scaled``) is the same dataclass with ``nats_nodes``, ``api_replicas``, ``workers``,
``gateways`` and ``envoy`` set.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stack.ports import free_port


@dataclass
class StackConfig:
    root: Path  # nats store, storage and logs live under it
    api_key: str
    signing_secret: str
    http_port: int = field(default_factory=free_port)
    grpc_port: int = field(default_factory=free_port)
    intelligence_port: int = field(default_factory=free_port)
    tracks_port: int = field(default_factory=free_port)
    nats_port: int = field(default_factory=free_port)
    allow_private_urls: bool = True
    media_role: str = "all"  # "api" to run workers only as add_worker() processes
    intelligence: bool = True  # start intelligence_service (it loads its models at start)
    # start tracks_service; None: when intelligence runs (its subtitles and chapters are child tasks
    # there, its thumbnails are not: True starts it alone too)
    tracks: bool | None = None
    nats_nodes: int = 1  # above 1: a JetStream cluster nats-1… (nats-1 on nats_port)
    api_replicas: int = 1  # API processes per family: "media" on grpc_port, "media-2"… on free ports
    workers: int = 0  # worker processes per family started with the stack; then every API is --role api
    gateways: int = 1  # gateway processes: "gateway" on http_port, "gateway-2"… on free ports
    envoy: bool = False  # envoy on http_port in front of the gateways (then on free ports) and the APIs
    envoy_grpc_port: int = field(default_factory=free_port)  # its internal gRPC listener
    envoy_admin_port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=dict)  # extra TRANSMUTE_* settings

    @classmethod
    def fresh(cls, root: Path, label: str, **fields: Any) -> StackConfig:
        """A stack under ``root`` with a new API key (``ittybit_<label>_…``) and signing secret,
        as every test and benchmark starts one."""
        return cls(
            root=root,
            api_key=f"ittybit_{label}_" + secrets.token_hex(8),
            signing_secret=secrets.token_urlsafe(32),
            **fields,
        )
