"""The NATS JetStream layout, declared once and created idempotently by whichever process starts first.

- KV bucket ``tasks``: key ``<project>.<task_id>`` → ``Task`` protobuf; every write is a
  compare-and-set on the last revision.
- Stream ``WORK`` (work-queue retention), subjects ``work.<family>.<kind>``; the message body is
  the task's key (a claim check, never media bytes) and ``Nats-Msg-Id`` is the task id.
- Stream ``EVENTS`` (limits retention, 7 days or 4 GiB), subjects ``tasks.events.<task_id>``.
- Core subject ``tasks.cancel.<task_id>``: tells the worker running a task to stop it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import nats
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import (
    DiscardPolicy,
    KeyValueConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError
from nats.js.kv import KeyValue

log = logging.getLogger(__name__)

TASKS_BUCKET = "tasks"
WORK_STREAM = "WORK"
EVENTS_STREAM = "EVENTS"
EVENTS_MAX_AGE_S = 7 * 24 * 3600.0
EVENTS_MAX_BYTES = 4 * 1024**3  # oldest events go first; watchers fall back to the record
DEDUP_WINDOW_S = 120.0
_CONNECT_TIMEOUT_S = 5.0


def work_subject(family: str, kind: str) -> str:
    return f"work.{family}.{kind}"


def event_subject(task_id: str) -> str:
    return f"tasks.events.{task_id}"


def cancel_subject(task_id: str) -> str:
    return f"tasks.cancel.{task_id}"


@dataclass
class Bus:
    """A connected client with the JetStream context and the task bucket."""

    nc: NATS
    js: JetStreamContext
    kv: KeyValue

    async def close(self) -> None:
        """Flush pending publishes and close (drain would also stop subscriptions mid-task)."""
        if not self.nc.is_closed:
            await self.nc.drain()


async def _ensure_stream(js: JetStreamContext, config: StreamConfig) -> None:
    try:
        await js.add_stream(config)
    except BadRequestError:
        # Exists with another config (e.g. an older deployment): bring it in line.
        await js.update_stream(config)


async def ensure_layout(js: JetStreamContext) -> KeyValue:
    """Create the bucket and streams if missing; safe to call from every process at start-up."""
    await _ensure_stream(
        js,
        StreamConfig(
            name=WORK_STREAM,
            subjects=["work.>"],
            retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE,
            duplicate_window=DEDUP_WINDOW_S,
        ),
    )
    await _ensure_stream(
        js,
        StreamConfig(
            name=EVENTS_STREAM,
            subjects=["tasks.events.>"],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=EVENTS_MAX_AGE_S,
            max_bytes=EVENTS_MAX_BYTES,
            discard=DiscardPolicy.OLD,
        ),
    )
    return await js.create_key_value(KeyValueConfig(bucket=TASKS_BUCKET, history=1, storage=StorageType.FILE))


async def connect(url: str, *, name: str) -> Bus:
    """Connect, declare the layout, and return the bus."""
    nc = await nats.connect(
        url,
        name=name,
        connect_timeout=_CONNECT_TIMEOUT_S,
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
    )
    js = nc.jetstream(timeout=_CONNECT_TIMEOUT_S)
    kv = await ensure_layout(js)
    log.info("connected to nats", extra={"nats_url": url.split("@")[-1], "client": name})
    return Bus(nc=nc, js=js, kv=kv)
