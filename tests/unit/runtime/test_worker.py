"""The shared worker loop on a real nats-server: outcomes by error class, redelivery, cancel, cleanup."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from transmute.tasks.v1 import tasks_pb2

from taskkit.config import Settings
from taskkit.errors import InputError, TransientError
from taskkit.records import Bus, TaskCreator, TaskStore, record_key, status, work_subject
from taskkit.runtime import Kind, Outcome, Output, TaskContext, Worker
from taskkit.storage.local import FileStorage
from tests.support import Corpus, Origin, build_corpus
from tests.support.nats_server import running_bus


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return build_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def served(media: Corpus) -> AsyncIterator[Origin]:
    with Origin(media.root) as origin:
        yield origin  # type: ignore[misc]


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[Bus]:
    async with running_bus(tmp_path / "nats") as connected:
        yield connected


@dataclass(frozen=True)
class EchoOptions:
    """The test kind's options: how its handler should behave."""

    behaviour: str = "ok"

    def to_dict(self) -> dict[str, Any]:
        return {"behaviour": self.behaviour}


def parse_echo(raw: Mapping[str, Any]) -> EchoOptions:
    return EchoOptions(**raw)


class Harness:
    """A worker with test handlers, plus the creator that feeds it."""

    def __init__(self, bus: Bus, tmp: Path) -> None:
        self.settings = Settings(
            allow_private_urls=True,
            ack_wait_seconds=1.0,
            max_deliver=2,
            worker_concurrency=2,
            work_dir=tmp / "work",
            storage_dir=tmp / "storage",
            shutdown_grace_seconds=1.0,
        )
        self.settings.work_dir.mkdir()  # type: ignore[union-attr]
        self.store = TaskStore(bus)
        self.storage = FileStorage(self.settings.storage_dir)
        self.creator = TaskCreator(bus=bus, store=self.store, family="test")
        self.calls: list[str] = []
        self.seen_workdirs: list[Path] = []
        self.bus = bus

    async def handler(self, ctx: TaskContext) -> Outcome:
        self.calls.append(ctx.task.id)
        self.seen_workdirs.append(ctx.workdir)
        behaviour = ctx.options.behaviour
        if behaviour == "transient":
            raise TransientError("the dependency is restarting")
        if behaviour == "bad":
            raise InputError("the input is not usable")
        if behaviour == "slow":
            for pct in range(1, 100):
                if ctx.cancel.is_set():
                    return Outcome()
                await ctx.report(pct)
                await asyncio.sleep(0.05)
        out = ctx.workdir / "copy.bin"
        out.write_bytes(ctx.input_path.read_bytes())
        return Outcome(
            [Output(path=out, name="copy.bin", entry=tasks_pb2.FileEntry(kind="source", type="video/mp4"))]
        )

    async def create(self, url: str, behaviour: str = "ok") -> str:
        created = await self.creator.create(
            project="p", kind="echo", spec=tasks_pb2.TaskSpec(url=url), options={"behaviour": behaviour}
        )
        return created.task.id

    async def finished(self, task_id: str, timeout: float = 20.0) -> tasks_pb2.Task:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            task = await self.store.get("p", task_id)
            if status.is_terminal(task.status):
                return task
            await asyncio.sleep(0.05)
        raise AssertionError(f"{task_id} did not finish")


@pytest.fixture
async def harness(bus: Bus, tmp_path: Path) -> AsyncIterator[Harness]:
    h = Harness(bus, tmp_path)
    worker = Worker(
        bus=bus,
        store=h.store,
        storage=h.storage,
        settings=h.settings,
        family="test",
        kinds=(Kind("echo", parse_echo, h.handler),),
    )
    stop = asyncio.Event()
    job = asyncio.create_task(worker.run(stop))
    yield h
    stop.set()
    await asyncio.wait_for(job, timeout=10)


async def test_success_stores_output_and_removes_the_work_dir(
    harness: Harness, served: Origin, media: Corpus
) -> None:
    task = await harness.finished(await harness.create(served.url(media.clip_av.name)))
    assert task.status == status.SUCCEEDED and task.progress == 100
    assert task.inputs[0].width == 320 and task.inputs[0].type == "video/mp4"
    assert task.outputs[0].key == f"p/{task.id}/copy.bin"
    stored = harness.storage.local_path(task.outputs[0].key)
    assert stored.read_bytes() == media.clip_av.read_bytes()
    assert task.outputs[0].filesize == media.clip_av.stat().st_size
    assert not harness.seen_workdirs[0].exists()


async def test_input_errors_fail_at_once(harness: Harness, served: Origin, media: Corpus) -> None:
    task = await harness.finished(await harness.create(served.url(media.clip_av.name), "bad"))
    assert task.status == status.FAILED and task.error == "the input is not usable"
    assert harness.calls == [task.id]


async def test_transient_errors_retry_then_fail_with_the_reason(
    harness: Harness, served: Origin, media: Corpus
) -> None:
    task = await harness.finished(
        await harness.create(served.url(media.clip_av.name), "transient"), timeout=30
    )
    assert task.status == status.FAILED
    assert task.error == "the dependency is restarting (gave up after 2 attempts)"
    assert harness.calls == [task.id, task.id]
    assert not any(p.exists() for p in harness.seen_workdirs)


async def test_a_probe_failure_is_a_clear_task_error(harness: Harness, served: Origin, media: Corpus) -> None:
    task = await harness.finished(await harness.create(served.url(media.html_page.name)))
    assert task.status == status.FAILED
    assert task.error == "the input is not a media file that can be read"
    assert harness.calls == []


async def test_cancel_reaches_the_running_handler(harness: Harness, served: Origin, media: Corpus) -> None:
    task_id = await harness.create(served.url(media.clip_av.name), "slow")
    deadline = time.monotonic() + 10
    while (await harness.store.get("p", task_id)).progress < 5 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)

    def cancel(t: tasks_pb2.Task) -> None:
        t.status = status.CANCELLED

    await harness.store.mutate(f"p.{task_id}", cancel)
    await harness.bus.nc.publish(f"tasks.cancel.{task_id}", b"")
    task = await harness.finished(task_id)
    await asyncio.sleep(0.3)
    assert task.status == status.CANCELLED and list(task.outputs) == []
    assert not harness.storage._path(f"p/{task_id}/copy.bin").exists()


async def test_the_loop_survives_bare_timeouts_from_fetch(
    harness: Harness, served: Origin, media: Corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """nats.py's fetch sometimes raises a bare asyncio TimeoutError when a long poll expires."""
    from nats.js.client import JetStreamContext

    real_fetch = JetStreamContext.PullSubscription.fetch
    raised = []

    async def flaky_fetch(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if len(raised) < 3:
            raised.append(1)
            raise TimeoutError
        return await real_fetch(self, *args, **kwargs)

    monkeypatch.setattr(JetStreamContext.PullSubscription, "fetch", flaky_fetch)
    await asyncio.sleep(0.5)
    task = await harness.finished(await harness.create(served.url(media.clip_av.name)))
    assert len(raised) == 3 and task.status == status.SUCCEEDED


async def test_cancel_stops_a_download_in_progress(harness: Harness, served: Origin, media: Corpus) -> None:
    """A cancel reaches the task while its input is still trickling in, not only during ffmpeg."""
    task_id = await harness.create(served.slow_url(media.clip_av.name, chunk=512, delay=0.2))
    deadline = time.monotonic() + 10
    while (await harness.store.get("p", task_id)).status != status.VALIDATING and time.monotonic() < deadline:
        await asyncio.sleep(0.05)

    def cancel(t: tasks_pb2.Task) -> None:
        t.status = status.CANCELLED

    await harness.store.mutate(f"p.{task_id}", cancel)
    started = time.monotonic()
    await harness.bus.nc.publish(f"tasks.cancel.{task_id}", b"")
    work_dir = harness.settings.work_dir
    assert work_dir is not None
    while any(work_dir.iterdir()) and time.monotonic() - started < 5:
        await asyncio.sleep(0.05)
    assert time.monotonic() - started < 2.0, "the download should stop within 2 s"
    assert harness.calls == []  # the handler never ran
    assert not any(work_dir.iterdir())  # the partial download and the temp dir are gone
    assert (await harness.store.get("p", task_id)).status == status.CANCELLED


async def test_a_second_publication_of_a_claimed_task_is_not_run_again(
    harness: Harness, served: Origin, media: Corpus
) -> None:
    """After the stream's duplicate window a sweeper can publish a task's work again; the record,
    already claimed by the first delivery, makes the worker skip the copy."""
    task_id = await harness.create(served.url(media.clip_av.name), "slow")
    deadline = time.monotonic() + 10
    while harness.calls != [task_id] and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await harness.bus.js.publish(
        work_subject("test", "echo"), record_key("p", task_id).encode(), headers={"Nats-Msg-Id": "again"}
    )
    task = await harness.finished(task_id, timeout=30)
    assert task.status == status.SUCCEEDED and harness.calls == [task_id]
