"""A handler's typed result lands in ``Task.result``; anything else is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from transmute.tasks.v1 import tasks_pb2

from taskkit.records import Bus, TaskCreator, TaskStore, status
from taskkit.runtime import Kind, Outcome, TaskContext
from taskkit.runtime.outcome import set_result
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


async def test_a_handlers_typed_result_lands_in_the_task_result(bus: Bus, tmp_path: Path) -> None:
    async def judge(ctx: TaskContext) -> Outcome:
        return Outcome(outputs=[copy_output(ctx)], result=tasks_pb2.NsfwResult(nudity=True, categories=["x"]))

    family = family_of("rt", Kind("judge", parse_none, judge))
    settings = settings_for(tmp_path)
    store = TaskStore(bus)
    url = await signed_input(FileStorage(settings.storage_dir), settings, tmp_path)
    async with running_worker(bus, settings, family):
        created = await TaskCreator(bus=bus, store=store, family="rt").create(
            project=PROJECT, kind="judge", spec=tasks_pb2.TaskSpec(url=url), options={}
        )
        task = await wait_for(store, created.task.id)
    assert task.status == status.SUCCEEDED, task.error
    assert task.WhichOneof("result") == "nsfw"
    assert task.nsfw.nudity and list(task.nsfw.categories) == ["x"]
    assert [(o.key, o.kind, o.type) for o in task.outputs] == [
        (f"p/{task.id}/copy.png", "image", "image/png")
    ]
    assert task.outputs[0].filesize == (tmp_path / "input.png").stat().st_size


def test_set_result_refuses_a_message_that_is_not_a_result_type() -> None:
    task = tasks_pb2.Task()
    set_result(task, tasks_pb2.SummaryResult())
    assert task.WhichOneof("result") == "summary"
    with pytest.raises(TypeError, match=r"transmute\.tasks\.v1\.FileEntry"):
        set_result(task, tasks_pb2.FileEntry(kind="x"))
