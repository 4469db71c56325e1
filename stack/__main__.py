"""``make run``: the development stack on http://localhost:8080 until Ctrl-C.

``make run-scaled`` (``--scaled``): the same API on the same port, served the way a cluster serves it:
a 3-node JetStream cluster, two API and two worker processes of each family, two gateways, and
envoy in front (its public listener on ``TRANSMUTE_HTTP_PORT``, its internal gRPC listener on
``TRANSMUTE_ENVOY_GRPC_PORT`` for the gateways and tracks → intelligence, its admin page on
``TRANSMUTE_ENVOY_ADMIN_PORT``). Both use the ``file`` storage backend under ``var/`` unless
``TRANSMUTE_STORAGE_BACKEND`` (and that backend's settings) is set.

Both keep running when one process dies, as a cluster does: the supervisor (stack/supervisor.py)
starts it again as it was, with backoff, and says so on stdout and in ``logs/stack.log``. A process
that keeps crashing (more than 5 exits within 60 s) is given up on, named with its log file, and
then the stack stops and exits with code 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import httpx

from stack import Stack, StackConfig, Supervisor, free_port
from taskkit.storage import signing

log = logging.getLogger("stack")


def _upload_sample(stack: Stack, var: Path, base: str) -> str:
    """Store a generated 3-second clip through a signed PUT, so the printed curl has a real input."""
    clip = var / "sample.mp4"
    if not clip.exists():
        subprocess.run(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
             "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30:duration=3",
             "-f", "lavfi", "-i", "sine=frequency=440:duration=3",
             "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(clip)],
            check=True,
        )  # fmt: skip
    secret = stack.config.signing_secret
    key = "default/samples/sample.mp4"
    put = signing.signed_url(stack.base_url, secret, key, ttl=600, method="put")
    httpx.put(put, content=clip.read_bytes(), timeout=30.0).raise_for_status()
    return signing.signed_url(base, secret, key, ttl=7 * 24 * 3600)


_STORAGE_PREFIXES = ("TRANSMUTE_STORAGE_BACKEND", "TRANSMUTE_S3_", "TRANSMUTE_NATS_OBJECT_")


def storage_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """The storage backend and its settings from the caller's environment (the stack hands its
    children no other TRANSMUTE_* variable): the ``file`` backend under ``var/`` unless one is set."""
    return {name: value for name, value in environ.items() if name.startswith(_STORAGE_PREFIXES)}


def scaled(config: StackConfig, environ: Mapping[str, str] | None = None) -> StackConfig:
    """The ``--scaled`` shape of ``config``, under ``<var>/scaled`` (a one-node store cannot join a
    cluster, so the two stacks keep their state apart). Its first nats node takes a free port like
    the other nodes unless ``TRANSMUTE_NATS_PORT`` names one: clients are given every node's URL, so
    no fixed port is needed, and a fixed one would collide with a ``make run`` beside it."""
    environ = os.environ if environ is None else environ
    return dataclasses.replace(
        config,
        root=config.root / "scaled",
        nats_port=int(environ["TRANSMUTE_NATS_PORT"]) if "TRANSMUTE_NATS_PORT" in environ else free_port(),
        nats_nodes=3,
        api_replicas=2,
        workers=2,
        gateways=2,
        envoy=True,
        envoy_grpc_port=int(environ.get("TRANSMUTE_ENVOY_GRPC_PORT", "50050")),
        envoy_admin_port=int(environ.get("TRANSMUTE_ENVOY_ADMIN_PORT", "9901")),
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m stack", description=__doc__)
    parser.add_argument("--var", type=Path, default=Path("var"), help="state directory (default var/)")
    parser.add_argument(
        "--scaled",
        action="store_true",
        help="3-node NATS cluster, 2 API + 2 worker processes per family, 2 gateways, envoy in front",
    )
    parser.add_argument(
        "--media-only",
        action="store_true",
        help="without intelligence_service and tracks_service (no models to load)",
    )
    args = parser.parse_args()
    var = args.var.resolve()
    var.mkdir(parents=True, exist_ok=True)
    secret_file = var / "signing_secret"
    if not secret_file.exists():
        secret_file.write_text(secrets.token_urlsafe(32))
        secret_file.chmod(0o600)
    api_key = os.environ.get("TRANSMUTE_API_KEY") or "ittybit_dev_" + secrets.token_hex(12)
    config = StackConfig(
        root=var,
        api_key=api_key,
        signing_secret=os.environ.get("TRANSMUTE_SIGNING_SECRET") or secret_file.read_text().strip(),
        http_port=int(os.environ.get("TRANSMUTE_HTTP_PORT", "8080")),
        grpc_port=int(os.environ.get("TRANSMUTE_GRPC_PORT", "50051")),
        intelligence_port=int(os.environ.get("TRANSMUTE_INTELLIGENCE_PORT", "50052")),
        tracks_port=int(os.environ.get("TRANSMUTE_TRACKS_PORT", "50053")),
        nats_port=int(os.environ.get("TRANSMUTE_NATS_PORT", "4222")),
        allow_private_urls=True,
        intelligence=not args.media_only,
        env=storage_settings(os.environ),
    )
    if args.scaled:
        config = scaled(config)
    _log_to(config.root / "logs" / "stack.log")
    stack = Stack(config)
    stack.config.env["TRANSMUTE_PUBLIC_URL"] = os.environ.get(
        "TRANSMUTE_PUBLIC_URL", f"http://localhost:{config.http_port}"
    )
    supervisor = Supervisor(stack)
    signal.signal(signal.SIGINT, lambda *_: supervisor.stop())
    signal.signal(signal.SIGTERM, lambda *_: supervisor.stop())
    given_up = None
    try:
        stack.start()
        base = f"http://localhost:{config.http_port}"
        sample = _upload_sample(stack, var, base)
        log.info(
            "\nTransmute is running at %s (development stack: input URLs on private networks are ALLOWED).\n"
            "Logs: %s\nAPI key: %s\n\nTry:\n"
            "  curl -s -X POST %s/tasks -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' \\\n"
            "    -d '{\"kind\": \"video\", \"url\": \"%s\", \"options\": {\"format\": \"webm\", \"width\": 320}}'\n"
            "then GET %s/tasks/<id> with the same header until status is succeeded.\n",
            base, config.root / "logs", api_key, base, api_key, sample, base,
        )  # fmt: skip
        if args.scaled:
            log.info("Processes: %s\nNATS: %s\n", " ".join(stack.procs), stack.nats_url)
        given_up = supervisor.run()  # until Ctrl-C, or a process that keeps crashing
    finally:
        log.info("stopping…")
        stack.stop()
    if given_up is not None:
        log.error("stopped because %s kept crashing", given_up)
        raise SystemExit(1)


def _log_to(path: Path) -> None:
    """The stack's own messages (restarts included) on stdout and in ``logs/stack.log``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        level=logging.INFO,
        format="%(message)s",
        handlers=[logging.StreamHandler(sys.stdout), logging.FileHandler(path)],
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)


if __name__ == "__main__":
    main()
