"""The NATS JetStream layout, declared once and created idempotently by whichever process starts first.

- KV bucket ``tasks``: key ``<project>.<task_id>`` → ``Task`` protobuf; every write is a
  compare-and-set on the last revision.
- Stream ``WORK`` (work-queue retention), subjects ``work.<family>.<kind>``; the message body is
  the task's key (a claim check, never media bytes) and ``Nats-Msg-Id`` is the task id.
- Stream ``EVENTS`` (limits retention, 7 days or 4 GiB), subjects ``tasks.events.<task_id>``.
- Stream ``OUTBOX`` (limits retention), subjects ``outbox.<family>.<kind>``: one entry per create
  that may not have been queued yet (``taskkit.records.outbox``), deleted once it is.
- KV bucket ``idempotency`` (TTL 24 h): ``<project>.<sha256 of the key>`` → the task id a client's
  ``Idempotency-Key`` stands for (``taskkit.records.idempotency``).
- Stream ``TASK_INDEX`` (limits retention, direct get), subjects ``index.<project>``: one entry per
  created task in creation order, what listing reads (``taskkit.records.index``).
- Core subject ``tasks.cancel.<task_id>``: tells the worker running a task to stop it.

Every stream and bucket is created with ``replicas`` copies (``TRANSMUTE_NATS_REPLICAS``: 1 on one
server, 3 on a 3-node cluster), so a cluster survives the loss of a node without losing a record.
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

from taskkit.records.index import INDEX_STREAM, INDEX_SUBJECTS, backfill

log = logging.getLogger(__name__)

TASKS_BUCKET = "tasks"
WORK_STREAM = "WORK"
EVENTS_STREAM = "EVENTS"
OUTBOX_STREAM = "OUTBOX"
IDEMPOTENCY_BUCKET = "idempotency"
IDEMPOTENCY_TTL_S = 24 * 3600.0
EVENTS_MAX_AGE_S = 7 * 24 * 3600.0
EVENTS_MAX_BYTES = 4 * 1024**3  # oldest events go first; watchers fall back to the record
DEDUP_WINDOW_S = 120.0
_CONNECT_TIMEOUT_S = 5.0


def work_subject(family: str, kind: str) -> str:
    return f"work.{family}.{kind}"


def work_consumer(family: str, kind: str) -> str:
    """The durable pull consumer of one kind's work (``taskkit.runtime.worker``); autoscalers read its lag."""
    return f"{family}-{kind}"


def outbox_subject(family: str, kind: str) -> str:
    return f"outbox.{family}.{kind}"


def event_subject(task_id: str) -> str:
    return f"tasks.events.{task_id}"


def cancel_subject(task_id: str) -> str:
    return f"tasks.cancel.{task_id}"


@dataclass
class Bus:
    """A connected client with the JetStream context, the task bucket and the idempotency bucket."""

    nc: NATS
    js: JetStreamContext
    kv: KeyValue
    keys: KeyValue

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


async def ensure_layout(js: JetStreamContext, *, replicas: int = 1) -> tuple[KeyValue, KeyValue]:
    """Create the buckets and streams if missing; safe to call from every process at start-up.
    Returns the task bucket and the idempotency bucket."""
    await _ensure_stream(
        js,
        StreamConfig(
            name=WORK_STREAM,
            subjects=["work.>"],
            retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE,
            duplicate_window=DEDUP_WINDOW_S,
            num_replicas=replicas,
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
            num_replicas=replicas,
        ),
    )
    await _ensure_stream(
        js,
        StreamConfig(
            name=OUTBOX_STREAM,
            subjects=["outbox.>"],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            num_replicas=replicas,
        ),
    )
    await _ensure_stream(
        js,
        StreamConfig(
            name=INDEX_STREAM,
            subjects=INDEX_SUBJECTS,
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            duplicate_window=DEDUP_WINDOW_S,
            allow_direct=True,
            num_replicas=replicas,
        ),
    )
    tasks = await js.create_key_value(
        KeyValueConfig(bucket=TASKS_BUCKET, history=1, storage=StorageType.FILE, replicas=replicas)
    )
    keys = await js.create_key_value(
        KeyValueConfig(
            bucket=IDEMPOTENCY_BUCKET,
            history=1,
            ttl=IDEMPOTENCY_TTL_S,
            storage=StorageType.FILE,
            replicas=replicas,
        )
    )
    return tasks, keys


def server_urls(url: str) -> list[str]:
    """``TRANSMUTE_NATS_URL`` may list every node of a cluster, comma-separated; the client
    reconnects to a survivor when the one it uses goes away."""
    return [part.strip() for part in url.split(",") if part.strip()]


async def connect(url: str, *, name: str, replicas: int = 1, repair_index: bool = True) -> Bus:
    """Connect, declare the layout (``replicas`` copies of everything), give every record the index
    lacks its entry (``repair_index``: what serves listings does; a worker need not), and return
    the bus."""
    nc = await nats.connect(
        servers=server_urls(url),
        name=name,
        connect_timeout=_CONNECT_TIMEOUT_S,
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
    )
    js = nc.jetstream(timeout=_CONNECT_TIMEOUT_S)
    kv, keys = await ensure_layout(js, replicas=replicas)
    if repair_index:
        await backfill(nc, js, f"KV_{TASKS_BUCKET}", f"$KV.{TASKS_BUCKET}.")
    log.info("connected to nats", extra={"nats_url": url.split("@")[-1], "client": name})
    return Bus(nc=nc, js=js, kv=kv, keys=keys)
