"""Per-process resources: opened before health says SERVING, closed on stop, and only those of
the kinds a worker runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from transmute.tasks.v1 import tasks_pb2, tasks_pb2_grpc

from stack import free_port
from taskkit import service
from taskkit.config import Settings
from taskkit.records import Bus, TaskCreator, TaskStore, status
from taskkit.rpc.metadata import PROJECT_KEY
from taskkit.runtime import Kind, Outcome, TaskContext
from taskkit.storage.local import FileStorage
from tests.unit.runtime.family_under_test import (
    MEDIA_SERVICE,
    PROJECT,
    copy_output,
    family_of,
    parse_none,
    settings_for,
    signed_input,
)


class FakeModel:
    """The test family's fake resource: slow to open, recording its life."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.release = asyncio.Event()  # the test lets it finish opening once it saw NOT_SERVING
        self.instance = object()
        self.closed_by: asyncio.Task[Any] | None = None

    @contextlib.asynccontextmanager
    async def factory(self, settings: Settings) -> AsyncIterator[object]:
        self.events.append("opening")
        await asyncio.wait_for(self.release.wait(), timeout=10)
        await asyncio.sleep(0.2)
        self.events.append("opened")
        try:
            yield self.instance
        finally:
            self.events.append("closed")
            self.closed_by = asyncio.current_task()  # serve itself, not a garbage collector's hook


async def health_of(channel: grpc.aio.Channel, service_name: str) -> int:
    reply = await health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=service_name), timeout=2
    )
    return reply.status


async def wait_port_open(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.02)
        else:
            writer.close()
            await writer.wait_closed()
            return


async def test_serve_opens_resources_before_serving_and_closes_them_on_stop(bus: Bus, tmp_path: Path) -> None:
    model = FakeModel()
    seen: list[object] = []

    async def uses_model(ctx: TaskContext) -> Outcome:
        seen.append(ctx.resources["model"])
        return Outcome(outputs=[copy_output(ctx)])

    family = family_of(
        "rtserve",
        Kind("use", parse_none, uses_model, resources=("model",)),
        resources={"model": model.factory},
    )
    assert bus.nc.connected_url is not None
    port = free_port()
    settings = settings_for(
        tmp_path, role="all", grpc_host="127.0.0.1", grpc_port=port, nats_url=bus.nc.connected_url.geturl()
    )
    store = TaskStore(bus)
    url = await signed_input(FileStorage(settings.storage_dir), settings, tmp_path)
    stop = asyncio.Event()
    serving = asyncio.create_task(service.serve(family, settings, stop=stop))
    try:
        await wait_port_open(port)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
            assert await health_of(channel, "") == not_serving
            assert await health_of(channel, MEDIA_SERVICE) == not_serving
            assert model.events == ["opening"]

            # A task created now waits: the worker pulls only once its resources are open.
            created = await TaskCreator(bus=bus, store=store, family=family.name).create(
                project=PROJECT, kind="use", spec=tasks_pb2.TaskSpec(url=url), options={}
            )
            await asyncio.sleep(0.5)
            assert (await store.get(PROJECT, created.task.id)).status == status.QUEUED and seen == []
            assert await health_of(channel, "") == not_serving

            model.release.set()
            deadline = time.monotonic() + 5
            while await health_of(channel, "") != health_pb2.HealthCheckResponse.SERVING:
                assert time.monotonic() < deadline, "health never said SERVING"
                await asyncio.sleep(0.02)
            assert model.events == ["opening", "opened"]
            assert await health_of(channel, MEDIA_SERVICE) == health_pb2.HealthCheckResponse.SERVING

            # The shared Tasks service is served too; poll the task through it.
            tasks = tasks_pb2_grpc.TasksStub(channel)
            deadline = time.monotonic() + 10
            while True:
                task = await tasks.GetTask(
                    tasks_pb2.GetTaskRequest(id=created.task.id),
                    metadata=((PROJECT_KEY, PROJECT),),
                    timeout=2,
                )
                if status.is_terminal(task.status) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
            assert task.status == status.SUCCEEDED, task.error
            assert seen == [model.instance]
            assert task.outputs[0].url.startswith(settings.base_url + "/files/")
    finally:
        stop.set()
        await asyncio.wait_for(serving, timeout=10)
    assert model.events == ["opening", "opened", "closed"]
    assert model.closed_by is serving, "serve should close its resources before it returns"


def test_a_worker_opens_only_the_resources_of_the_kinds_it_runs() -> None:
    """A GPU host running only ``speech`` must not load the nsfw model, and the reverse."""
    model, other = FakeModel(), FakeModel()

    async def handler(ctx: TaskContext) -> Outcome:
        return Outcome()

    family = family_of(
        "rtpick",
        Kind("a", parse_none, handler, resources=("model",)),
        Kind("b", parse_none, handler, resources=("other",)),
        Kind("c", parse_none, handler),
        resources={"model": model.factory, "other": other.factory},
    )
    assert set(family.resources_for(family.kinds)) == {"model", "other"}
    assert set(family.resources_for((family.kind("a"),))) == {"model"}
    assert family.resources_for((family.kind("c"),)) == {}
    broken = family_of("rtbroken", Kind("d", parse_none, handler, resources=("missing",)))
    with pytest.raises(KeyError, match="missing"):
        broken.resources_for(broken.kinds)
