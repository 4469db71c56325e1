"""Task records in NATS JetStream: the layout (streams, buckets, subjects), the
compare-and-set store and the statuses it moves forward, the listing index, the outbox and its
sweeper, Idempotency-Keys, the write protocol of a create, and the JSON every record must keep.
"""

from taskkit.records.creator import Retry, TaskCreator
from taskkit.records.index import index_subject, stub
from taskkit.records.jetstream import (
    TASKS_BUCKET,
    WORK_STREAM,
    Bus,
    cancel_subject,
    connect,
    server_urls,
    work_consumer,
    work_subject,
)
from taskkit.records.outbox import Sweeper
from taskkit.records.result_json import message_json, result_json
from taskkit.records.store import ListQuery, TaskStore, mark_failed, record_key, split_key

__all__ = [
    "TASKS_BUCKET",
    "WORK_STREAM",
    "Bus",
    "ListQuery",
    "Retry",
    "Sweeper",
    "TaskCreator",
    "TaskStore",
    "cancel_subject",
    "connect",
    "index_subject",
    "mark_failed",
    "message_json",
    "record_key",
    "result_json",
    "server_urls",
    "split_key",
    "stub",
    "work_consumer",
    "work_subject",
]
