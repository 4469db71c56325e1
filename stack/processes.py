"""``Stack``: a ``StackConfig`` carried out as child processes — nats-server (one, or a JetStream
cluster), each family's API and worker processes, the gateways and envoy — started in dependency
order, each on its port, with its own log file, and stopped newest first.

Every child runs in its own session, so a signal meant for one process (a test's ``kill``,
``pause`` or ``restart``, a terminal's Ctrl-C) reaches that process's group and nothing else, and
no child outlives ``stop()``. ``pids.json`` under the root names each process's current pid, so a
caller outside this Python process (a fault test of ``python -m stack``) can find one.

The scaled shape: ``nats_nodes`` nodes (``nats-1``…, every one in ``TRANSMUTE_NATS_URL``,
everything stored with ``min(3, nodes)`` replicas), ``api_replicas`` API processes and
``workers`` worker processes per family, ``gateways`` gateway processes, and envoy in front
(stack/envoy.py): its public listener takes ``http_port`` and balances the gateways, and its
internal gRPC listener is the one address every gRPC client (gateway → families, tracks →
intelligence) is given, balancing each family's API replicas.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from stack import envoy, nats_cluster
from stack.binaries import nats_server_binary
from stack.config import StackConfig
from stack.ports import START_TIMEOUT_S, free_port, wait_healthy, wait_port

_DESCRIPTOR = Path(__file__).resolve().parent.parent / "gen" / "transmute.pb"  # `make protos` writes it
_STOP_TIMEOUT_S = 15.0
PIDS_FILE = "pids.json"  # under the stack's root: {process name: pid}, rewritten at every start


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

    def log_path(self, name: str) -> Path:
        """The file one process's stdout and stderr go to (appended across restarts)."""
        return self.config.root / "logs" / f"{name}.log"

    def _spawn(
        self, name: str, argv: list[str], port: int | None = None, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        self._argv[name] = (argv, port, env or {})
        path = self.log_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("ab") as log:
            proc = subprocess.Popen(
                argv,
                env={**self.env(), **(env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs[name] = proc
        self._write_pids()
        if port is not None:
            wait_port(port, proc, name)
        return proc

    def _write_pids(self) -> None:
        """``pids.json``, replaced whole (a reader never sees half a file)."""
        path = self.config.root / PIDS_FILE
        partial = path.with_suffix(".json.tmp")
        partial.write_text(json.dumps({name: proc.pid for name, proc in self.procs.items()}))
        partial.replace(path)

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
        nats_cluster.wait_ready(self.nats_nodes, timeout=START_TIMEOUT_S)

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
        nats_cluster.wait_ready(self.nats_nodes, timeout=START_TIMEOUT_S)

    def log_text(self, name: str) -> str:
        path = self.log_path(name)
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
