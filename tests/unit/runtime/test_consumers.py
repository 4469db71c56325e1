"""One consumer per kind: a kind no worker runs stays queued until one does, and an unknown
kind in ``TRANSMUTE_KINDS`` is refused by name.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from transmute.tasks.v1 import tasks_pb2

from taskkit.config import Settings
from taskkit.records import Bus, TaskCreator, TaskStore, status
from taskkit.runtime import Kind, Outcome, TaskContext
from taskkit.storage.local import FileStorage
from tests.unit.runtime.family_under_test import (
    PROJECT,
    copy_output,
    family_of,
    parse_none,
    running_worker,
    settings_for,
    signed_input,
    wait_for,
)


async def test_a_kind_no_worker_runs_stays_queued_until_one_does(bus: Bus, tmp_path: Path) -> None:
    """TRANSMUTE_KINDS=alpha: beta tasks wait, untouched; a later worker for beta (a rolling deploy
    that adds the kind) runs them."""
    ran: list[str] = []

    async def handler(ctx: TaskContext) -> Outcome:
        ran.append(ctx.task.kind)
        return Outcome(outputs=[copy_output(ctx)])

    family = family_of("rt", Kind("alpha", parse_none, handler), Kind("beta", parse_none, handler))
    settings = settings_for(tmp_path)
    store = TaskStore(bus)
    creator = TaskCreator(bus=bus, store=store, family=family.name)
    url = await signed_input(FileStorage(settings.storage_dir), settings, tmp_path)
    alpha_only = family.selected(Settings(kinds="alpha"))
    assert [kind.name for kind in alpha_only] == ["alpha"]

    async with running_worker(bus, settings, family, alpha_only):
        beta = await creator.create(
            project=PROJECT, kind="beta", spec=tasks_pb2.TaskSpec(url=url), options={}
        )
        alpha = await creator.create(
            project=PROJECT, kind="alpha", spec=tasks_pb2.TaskSpec(url=url), options={}
        )
        assert (await wait_for(store, alpha.task.id)).status == status.SUCCEEDED
        await asyncio.sleep(1.5)
        waiting = await store.get(PROJECT, beta.task.id)
    assert waiting.status == status.QUEUED and waiting.attempts == 0 and not waiting.HasField("started_at")
    assert ran == ["alpha"]

    async with running_worker(bus, settings, family, family.selected(Settings(kinds="beta"))):
        done = await wait_for(store, beta.task.id)
    assert done.status == status.SUCCEEDED and done.attempts == 1
    assert ran == ["alpha", "beta"]


def test_selecting_an_unknown_kind_exits_naming_it() -> None:
    family = family_of("rt", Kind("alpha", parse_none, lambda ctx: None))  # type: ignore[arg-type,return-value]
    assert family.selected(Settings()) == family.kinds
    with pytest.raises(SystemExit, match=r"gamma \(it has alpha\)"):
        family.selected(Settings(kinds="alpha, gamma"))
