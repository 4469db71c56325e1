"""The sweeper of every API process, with no leader: two processes' sweepers (each its own NATS
connection) and the create they finish, arriving late, still queue a stranded task exactly once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from transmute.tasks.v1 import tasks_pb2

from taskkit import ids
from taskkit.records import WORK_STREAM, Sweeper, TaskStore, connect, record_key, status
from taskkit.records.jetstream import OUTBOX_STREAM
from taskkit.records.outbox import Outbox
from tests.support.nats_server import running_bus

PROJECT = "p"


async def test_two_processes_sweepers_and_the_late_creator_queue_it_once(tmp_path: Path) -> None:
    async with running_bus(tmp_path) as first:
        url = first.nc.connected_url
        assert url is not None
        second = await connect(f"nats://{url.netloc}", name="second-api")
        try:
            task_id = ids.task_id()
            key = record_key(PROJECT, task_id)
            outbox = Outbox(first, "media")
            await outbox.add("image", key)  # the create stopped after storing its record
            await TaskStore(first).create(
                tasks_pb2.Task(id=task_id, kind="image", status=status.WAITING, project=PROJECT, url="u")
            )
            later = datetime.now(UTC) + timedelta(minutes=1)
            sweepers = [
                Sweeper(bus=bus, store=TaskStore(bus), family="media", after_s=10.0, interval_s=1.0)
                for bus in (first, second)
            ]
            await asyncio.gather(
                *(s.sweep_once(now=later) for s in sweepers),
                outbox.publish_work("image", key, task_id),  # the stalled creator, resuming
            )
            assert (await first.js.stream_info(WORK_STREAM)).state.messages == 1
            assert (await first.js.stream_info(OUTBOX_STREAM)).state.messages == 0
            assert (await TaskStore(second).get(PROJECT, task_id)).status == status.QUEUED
        finally:
            await second.close()
