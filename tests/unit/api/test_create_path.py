"""The create path on a real nats-server: idempotency keys, proposed task ids, the outbox sweeper,
the worker's guard against a second publication, and NATS faults answered as UNAVAILABLE.

Faults are made for real: a create is stopped part way by doing only its first steps (the outbox
entry and the record, as a crash between storing and publishing leaves them), and NATS is stopped
under a running gRPC server.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from transmute.media.v1 import media_pb2, media_pb2_grpc
from transmute.tasks.v1 import tasks_pb2

from media_service.family import FAMILY
from stack import free_port, nats_server_binary, wait_port
from taskkit import ids
from taskkit.api import CreateHelper, create_server, set_serving
from taskkit.config import Settings
from taskkit.errors import IdempotencyKeyReused
from taskkit.records import (
    WORK_STREAM,
    Bus,
    Retry,
    Sweeper,
    TaskCreator,
    TaskStore,
    connect,
    record_key,
    status,
)
from taskkit.records.jetstream import OUTBOX_STREAM
from taskkit.records.outbox import Outbox
from taskkit.rpc import ERROR_KIND_KEY, metadata
from taskkit.rpc.metadata import PROJECT_KEY
from tests.support.nats_server import running_bus

PROJECT = "p"
URL = "https://example.com/a.png"


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[Bus]:
    async with running_bus(tmp_path / "nats") as connected:
        yield connected


def creator(bus: Bus) -> TaskCreator:
    return TaskCreator(bus=bus, store=TaskStore(bus), family="media")


async def create(bus: Bus, retry: Retry | None = None, url: str = URL) -> tuple[tasks_pb2.Task, bool]:
    created = await creator(bus).create(
        project=PROJECT, kind="image", spec=tasks_pb2.TaskSpec(url=url), options={}, retry=retry
    )
    return created.task, created.replayed


async def work_messages(bus: Bus) -> int:
    return int((await bus.js.stream_info(WORK_STREAM)).state.messages)


async def outbox_entries(bus: Bus) -> int:
    return int((await bus.js.stream_info(OUTBOX_STREAM)).state.messages)


async def project_tasks(bus: Bus) -> int:
    return len(await TaskStore(bus)._task_ids(PROJECT))


# --- idempotency keys and proposed ids ----------------------------------------------------------


async def test_a_create_queues_once_and_leaves_no_outbox_entry(bus: Bus) -> None:
    task, replayed = await create(bus)
    assert not replayed and task.status == status.WAITING
    assert (await TaskStore(bus).get(PROJECT, task.id)).status == status.QUEUED
    assert (await work_messages(bus), await outbox_entries(bus)) == (1, 0)


async def test_the_same_key_and_body_replay_the_task(bus: Bus) -> None:
    first, replayed_first = await create(bus, Retry(idempotency_key="k1", fingerprint="f"))
    again, replayed_again = await create(bus, Retry(idempotency_key="k1", fingerprint="f"))
    assert (replayed_first, replayed_again) == (False, True)
    assert again.id == first.id and await project_tasks(bus) == 1 and await work_messages(bus) == 1


async def test_the_same_key_with_another_body_is_refused(bus: Bus) -> None:
    await create(bus, Retry(idempotency_key="k2", fingerprint="f"))
    with pytest.raises(IdempotencyKeyReused, match="different request"):
        await create(bus, Retry(idempotency_key="k2", fingerprint="g"))
    assert await project_tasks(bus) == 1


async def test_concurrent_creates_with_one_key_make_one_task(bus: Bus) -> None:
    results = await asyncio.gather(
        *(create(bus, Retry(idempotency_key="k3", fingerprint="f")) for _ in range(10))
    )
    assert len({task.id for task, _ in results}) == 1
    assert sorted(replayed for _, replayed in results) == [False] + [True] * 9
    assert await project_tasks(bus) == 1 and await work_messages(bus) == 1


async def test_keys_are_per_project(bus: Bus) -> None:
    ours, _ = await create(bus, Retry(idempotency_key="k4", fingerprint="f"))
    theirs = await creator(bus).create(
        project="q",
        kind="image",
        spec=tasks_pb2.TaskSpec(url=URL),
        options={},
        retry=Retry(idempotency_key="k4", fingerprint="f"),
    )
    assert theirs.task.id != ours.id and not theirs.replayed


async def test_a_repeated_proposed_id_finds_the_first_attempt(bus: Bus) -> None:
    proposed = ids.task_id()
    first, _ = await create(bus, Retry(task_id=proposed))
    again, replayed = await create(bus, Retry(task_id=proposed))
    assert first.id == again.id == proposed and replayed
    assert await project_tasks(bus) == 1 and await work_messages(bus) == 1


# --- the sweeper -------------------------------------------------------------------------------


async def stranded(bus: Bus) -> str:
    """A create that stopped after storing its record: an outbox entry and a waiting record."""
    task_id = ids.task_id()
    key = record_key(PROJECT, task_id)
    await Outbox(bus, "media").add("image", key)
    await TaskStore(bus).create(
        tasks_pb2.Task(id=task_id, kind="image", status=status.WAITING, project=PROJECT, url=URL)
    )
    return task_id


def sweeper(bus: Bus) -> Sweeper:
    return Sweeper(bus=bus, store=TaskStore(bus), family="media", after_s=10.0, interval_s=1.0)


def later() -> datetime:
    """A moment past the sweep threshold of every entry written so far."""
    return datetime.now(UTC) + timedelta(minutes=1)


async def test_the_sweeper_queues_a_stranded_task_once(bus: Bus) -> None:
    task_id = await stranded(bus)
    assert (await sweeper(bus).sweep_once()).republished == 0, "too young: its create may still finish"
    report = await sweeper(bus).sweep_once(now=later())
    assert (report.republished, report.cleared) == (1, 1)
    assert (await TaskStore(bus).get(PROJECT, task_id)).status == status.QUEUED
    assert (await work_messages(bus), await outbox_entries(bus)) == (1, 0)
    assert (await sweeper(bus).sweep_once(now=later())).cleared == 0


async def test_concurrent_sweepers_queue_it_once(bus: Bus) -> None:
    await stranded(bus)
    reports = await asyncio.gather(*(sweeper(bus).sweep_once(now=later()) for _ in range(3)))
    assert sum(r.republished for r in reports) >= 1
    assert await work_messages(bus) == 1, "Nats-Msg-Id dedup keeps one work message"


async def test_entries_of_queued_or_missing_records_are_just_cleared(bus: Bus) -> None:
    await create(bus)  # finished normally: no entry
    await Outbox(bus, "media").add("image", record_key(PROJECT, ids.task_id()))  # never stored
    report = await sweeper(bus).sweep_once(now=later())
    assert (report.republished, report.cleared) == (0, 1)
    assert await work_messages(bus) == 1 and await outbox_entries(bus) == 0


async def test_a_sweeper_only_sweeps_its_own_family(bus: Bus) -> None:
    await Outbox(bus, "tracks").add("subtitles", record_key(PROJECT, ids.task_id()))
    assert (await sweeper(bus).sweep_once(now=later())).cleared == 0
    assert await outbox_entries(bus) == 1


async def test_the_sweeper_runs_until_stopped(bus: Bus) -> None:
    task_id = await stranded(bus)
    stop = asyncio.Event()
    quick = Sweeper(bus=bus, store=TaskStore(bus), family="media", after_s=0.0, interval_s=0.1)
    job = asyncio.create_task(quick.run(stop))
    for _ in range(50):
        if (await TaskStore(bus).get(PROJECT, task_id)).status == status.QUEUED:
            break
        await asyncio.sleep(0.1)
    stop.set()
    await asyncio.wait_for(job, 5)
    assert (await TaskStore(bus).get(PROJECT, task_id)).status == status.QUEUED


# --- NATS down under a running service ----------------------------------------------------------


async def test_a_create_while_nats_is_down_is_unavailable_not_internal(tmp_path: Path) -> None:
    port = free_port()
    argv = [nats_server_binary(), "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(tmp_path / "nats")]
    nats = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, nats, "nats-server")
    bus = await connect(f"nats://127.0.0.1:{port}", name="test")
    names = [FAMILY.service_name]

    def register(server: grpc.aio.Server) -> None:
        helper = CreateHelper(creator(bus), FAMILY.kinds, Settings(signing_secret="s"))
        media_pb2_grpc.add_MediaServicer_to_server(FAMILY.servicer(helper), server)

    server, grpc_port, health = create_server(address="127.0.0.1:0", register=register, service_names=names)
    await server.start()
    await set_serving(health, names, True)
    request = media_pb2.CreateImageTaskRequest(spec=tasks_pb2.TaskSpec(url=URL))
    meta = ((PROJECT_KEY, PROJECT), (metadata.TASK_ID_KEY, ids.task_id()))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            stub = media_pb2_grpc.MediaStub(channel)
            nats.terminate()
            nats.wait(timeout=10)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.CreateImageTask(request, metadata=meta, timeout=15)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
            assert (ERROR_KIND_KEY, "service_unavailable") in tuple(caught.value.trailing_metadata() or ())
            nats = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_port(port, nats, "nats-server")
            for _ in range(40):  # the client reconnects with backoff; then the same create works
                try:
                    task = await stub.CreateImageTask(request, metadata=meta, timeout=15)
                    break
                except grpc.aio.AioRpcError as exc:
                    assert exc.code() == grpc.StatusCode.UNAVAILABLE
                    await asyncio.sleep(0.25)
            assert task.id == meta[1][1]
            assert await TaskStore(bus)._task_ids(PROJECT) == [task.id], "one task, whatever was buffered"
    finally:
        await server.stop(1)
        await bus.close()
        nats.terminate()
        nats.wait(timeout=10)
