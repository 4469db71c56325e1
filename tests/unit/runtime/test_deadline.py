"""The whole-task deadline: a handler over its kind's budget fails the task promptly."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from transmute.tasks.v1 import tasks_pb2

from taskkit.config import Settings
from taskkit.records import Bus, TaskCreator, TaskStore, status
from taskkit.runtime import Kind, Outcome, TaskContext
from taskkit.runtime.family import budget
from taskkit.storage.local import FileStorage
from tests.unit.runtime.family_under_test import (
    PROJECT,
    family_of,
    parse_none,
    running_worker,
    settings_for,
    signed_input,
    wait_for,
)


async def test_a_handler_over_its_budget_fails_the_task_promptly(bus: Bus, tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    async def slow(ctx: TaskContext) -> Outcome:
        seen["remaining"] = ctx.remaining()
        for _ in range(10):  # 5 s in all, in several awaits
            await asyncio.sleep(0.5)
        seen["finished"] = True
        return Outcome()

    family = family_of("rt", Kind("slow", parse_none, slow))
    settings = settings_for(tmp_path, kind_timeouts={"slow": 0.5})
    store = TaskStore(bus)
    url = await signed_input(FileStorage(settings.storage_dir), settings, tmp_path)
    async with running_worker(bus, settings, family):
        started = time.monotonic()
        created = await TaskCreator(bus=bus, store=store, family="rt").create(
            project=PROJECT, kind="slow", spec=tasks_pb2.TaskSpec(url=url), options={}
        )
        task = await wait_for(store, created.task.id)
        took = time.monotonic() - started
    assert task.status == status.FAILED
    assert task.error == "processing took longer than the limit of 0.5 seconds"
    assert took < 2.5, f"the deadline should stop the task within ~0.5 s, took {took:.1f} s"
    assert 0 < seen["remaining"] <= 0.5 and "finished" not in seen
    assert task.attempts == 1  # a deadline is the input's fault: no retry


def test_budget_is_the_kinds_default_unless_overridden() -> None:
    kind = Kind("k", parse_none, lambda ctx: None, timeout_seconds=42.0)  # type: ignore[arg-type,return-value]
    assert budget(kind, Settings()) == 42.0
    assert budget(kind, Settings(kind_timeouts={"other": 1.0})) == 42.0
    assert budget(kind, Settings(kind_timeouts={"k": 0.5})) == 0.5
