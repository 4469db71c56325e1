"""The shape ``python -m stack --scaled`` runs: its ports come from the caller's environment, and
what the caller does not name is a free port, so a scaled stack never takes nats' well-known 4222
(a ``make run`` beside it, or a second scaled stack, would collide there)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stack import StackConfig
from stack.__main__ import scaled


def base(tmp_path: Path) -> StackConfig:
    """As ``python -m stack`` builds it before ``--scaled``: the documented default ports."""
    return StackConfig(root=tmp_path, api_key="ittybit_k", signing_secret="s", http_port=8080, nats_port=4222)


def test_the_first_nats_node_takes_a_free_port_unless_one_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRANSMUTE_NATS_PORT", raising=False)
    first = scaled(base(tmp_path))
    assert first.nats_port != 4222
    assert (first.root, first.nats_nodes, first.http_port) == (tmp_path / "scaled", 3, 8080)

    monkeypatch.setenv("TRANSMUTE_NATS_PORT", "4333")
    assert scaled(base(tmp_path)).nats_port == 4333
