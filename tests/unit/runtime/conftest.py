"""A nats-server per test, for the runtime tests (``running_bus``: a free port and a temp store)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from taskkit.records import Bus
from tests.support.nats_server import running_bus


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[Bus]:
    async with running_bus(tmp_path / "nats") as connected:
        yield connected
