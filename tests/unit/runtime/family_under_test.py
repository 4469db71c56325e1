"""The test family and its helpers, shared by the runtime tests: kinds without options whose
handlers copy a small PNG (so nothing needs ffmpeg), on a real nats-server, gRPC server and
``FileStorage`` in temp dirs; inputs are links this deployment signed to files in storage."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from transmute.media.v1 import media_pb2, media_pb2_grpc
from transmute.tasks.v1 import tasks_pb2

from taskkit.config import Settings
from taskkit.records import Bus, TaskStore, status
from taskkit.runtime import Family, Kind, Output, TaskContext, Worker
from taskkit.runtime.progress import Progress
from taskkit.storage import signing
from taskkit.storage.local import FileStorage

SECRET = "test-signing-secret"
PROJECT = "p"
MEDIA_SERVICE = media_pb2.DESCRIPTOR.services_by_name["Media"].full_name


# --- the test family's pieces -------------------------------------------------------------------


@dataclass(frozen=True)
class NoOptions:
    """The test family's kinds take no options."""

    def to_dict(self) -> dict[str, Any]:
        return {}


def parse_none(raw: Mapping[str, Any]) -> NoOptions:
    return NoOptions(**raw)


def copy_output(ctx: TaskContext, name: str = "copy.png") -> Output:
    """The test family's one output: a copy of the input."""
    out = ctx.workdir / name
    out.write_bytes(ctx.input_path.read_bytes())
    return Output(path=out, name=name, entry=tasks_pb2.FileEntry(kind="image", type="image/png"))


def family_of(name: str, *kinds: Kind, resources: Mapping[str, Any] | None = None) -> Family:
    """A test family. It borrows the Media service descriptor: ``serve`` needs a generated
    service to register, and the base ``MediaServicer`` (every RPC unimplemented) is enough."""
    return Family(
        name=name,
        service_name=MEDIA_SERVICE,
        servicer=lambda helper: media_pb2_grpc.MediaServicer(),
        add_servicer=media_pb2_grpc.add_MediaServicer_to_server,
        kinds=kinds,
        resources=resources or {},
    )


def settings_for(tmp: Path, **overrides: Any) -> Settings:
    work = tmp / "work"
    work.mkdir(exist_ok=True)
    values: dict[str, Any] = {
        "signing_secret": SECRET,
        "storage_dir": tmp / "storage",
        "work_dir": work,
        "ack_wait_seconds": 2.0,
        "max_deliver": 2,
        "shutdown_grace_seconds": 1.0,
        **overrides,
    }
    return Settings(**values)


async def signed_input(storage: FileStorage, settings: Settings, tmp: Path) -> str:
    """A small PNG in storage and this deployment's signed link to it: the tasks' input."""
    png = tmp / "input.png"
    Image.new("RGB", (16, 16), (30, 160, 90)).save(png, format="PNG")
    await storage.put_file("p/inputs/input.png", png)
    return signing.signed_url(settings.base_url, SECRET, "p/inputs/input.png", ttl=600)


async def wait_for(store: TaskStore, task_id: str, *, timeout: float = 10.0) -> tasks_pb2.Task:
    """The task once it reached a terminal status."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = await store.get(PROJECT, task_id)
        if status.is_terminal(task.status):
            return task
        await asyncio.sleep(0.05)
    raise AssertionError(f"{task_id} did not finish within {timeout} s")


@contextlib.asynccontextmanager
async def running_worker(
    bus: Bus, settings: Settings, family: Family, kinds: tuple[Kind, ...] | None = None
) -> AsyncIterator[Worker]:
    worker = Worker(
        bus=bus,
        store=TaskStore(bus),
        storage=FileStorage(settings.storage_dir),
        settings=settings,
        family=family.name,
        kinds=family.kinds if kinds is None else kinds,
    )
    stop = asyncio.Event()
    job = asyncio.create_task(worker.run(stop))
    try:
        yield worker
    finally:
        stop.set()
        await asyncio.wait_for(job, timeout=10)


class Sink:
    def __init__(self) -> None:
        self.written: list[int] = []

    async def __call__(self, percent: int) -> None:
        self.written.append(percent)


async def test_progress_is_the_weighted_sum_of_planned_steps_and_never_goes_back() -> None:
    sink = Sink()
    progress = Progress(sink)
    progress.plan({"decode": 1, "package": 3})
    await progress.step("decode")(100)
    assert progress.percent == 25
    await progress.step("package")(50)
    assert progress.percent == 62  # 25 + 3/4 of 50, rounded down
    await progress.step("package")(10)  # a step reporting less does not lower the task
    await progress.step("decode")(0)
    assert progress.percent == 62
    await progress.step("package")(60)  # each step counts from its own highest report
    assert progress.percent == 70
    assert sink.written == [25, 62, 70]


async def test_progress_stops_at_99_until_the_worker_records_success() -> None:
    sink = Sink()
    progress = Progress(sink)
    progress.plan({"a": 1, "b": 1})
    await progress.step("a")(100)
    await progress.step("b")(250)  # out-of-range reports are clamped
    assert progress.percent == 99 and sink.written == [50, 99]


async def test_progress_single_step_default_and_bad_plans() -> None:
    sink = Sink()
    progress = Progress(sink)
    await progress.step()(40)
    await progress.step()(-5)
    await progress.step()(100)
    assert sink.written == [40, 99]
    with pytest.raises(KeyError, match="never"):
        progress.step("never")
    for weights in ({"a": 0}, {"a": 1, "b": -1}, {}):
        with pytest.raises(ValueError, match="positive"):
            progress.plan(weights)
    progress.plan({"only": 2})
    with pytest.raises(KeyError):
        progress.step()  # once steps are planned, the single default step is gone
