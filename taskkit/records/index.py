"""The listing index: one message per created task on ``index.<project>``, in creation order.

A KV bucket has no key order and its stream reorders a record on every update, and a subject
listing of a whole project is capped by the server at 100,000 subjects; so listing reads this
stream instead (``TASK_INDEX``, limits retention, direct get on). Each message is a ``Task`` stub
holding only the fields that never change after create (id, kind, run_id, parent_id), so those
filters are applied here without reading a record; the record is read only for what is shown.

Reads are batched direct gets (``next_by_subj`` + ``batch``): a forward page is one request. The
server only reads forward, so a page read backwards (the default newest-first order) first finds
where to start: every message of a batch carries ``Nats-Num-Pending`` (how many entries of the
project come after it), so counting the entries in ``[lo, end)`` costs one probe, and ``lo`` is
narrowed by interpolation (bisection when that stalls) until the window holds about a page.

Positions are stream sequences. A cursor names a task: its entry is found by binary search on ids
(ids sort by creation time, so the index is sorted up to the milliseconds by which concurrent
creates may commit out of mint order), then looked for exactly among its neighbours; an id with no
entry (deleted, or never created) splits the index where ids cross it. Every cost here grows with
the page and with log(stream length), never with the size of the project.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from dataclasses import dataclass

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy
from nats.js.errors import APIError, NotFoundError
from transmute.tasks.v1 import tasks_pb2

INDEX_STREAM = "TASK_INDEX"
INDEX_SUBJECTS = ["index.>"]
_READ_TIMEOUT_S = 5.0
_PUBLISH_TIMEOUT_S = 5.0
_MAX_BATCH = 256
_PROBES = 48  # bisection of a 2^48-message stream; interpolation usually needs 1-3
_NEIGHBOURS = 8  # entries either side of a cursor's split searched for the cursor itself
_NO_MESSAGE = 10057
_BACKFILL_BATCH = 1000


def index_subject(project: str) -> str:
    return f"index.{project}"


@dataclass(frozen=True)
class Entry:
    """One index message: where it sits, the immutable fields of its task, and how many entries
    of the same project follow it in the stream."""

    seq: int
    task: tasks_pb2.Task
    pending: int


@dataclass(frozen=True)
class Split:
    """A cursor's place in the index: entries before it have ``seq < below``, entries after it
    ``seq >= above`` (``above = below + 1`` when the cursor's own entry sits in between)."""

    below: int
    above: int


def stub(task: tasks_pb2.Task) -> tasks_pb2.Task:
    """What the index keeps of a task: the fields a create fixes for good."""
    kept = tasks_pb2.Task(id=task.id, kind=task.kind, run_id=task.run_id)
    if task.HasField("parent_id"):
        kept.parent_id = task.parent_id
    return kept


def _entry(msg: Msg) -> Entry:
    headers = msg.headers or {}
    task = tasks_pb2.Task()
    task.ParseFromString(msg.data or b"")
    return Entry(
        seq=int(headers["Nats-Sequence"]),
        task=task,
        pending=int(headers.get("Nats-Num-Pending", "0")),
    )


class TaskIndex:
    """Appends and reads the per-project index of created tasks."""

    def __init__(self, nc: NATS, js: JetStreamContext) -> None:
        self._nc = nc
        self._js = js

    async def add(self, task: tasks_pb2.Task) -> tuple[int, bool]:
        """Append the task's entry; returns its sequence and whether the stream had it already
        (``Nats-Msg-Id`` is the task id, so a retried create within the window appends once)."""
        ack = await self._js.publish(
            index_subject(task.project),
            stub(task).SerializeToString(),
            headers={"Nats-Msg-Id": task.id},
            timeout=_PUBLISH_TIMEOUT_S,
        )
        return int(ack.seq), bool(ack.duplicate)

    async def remove(self, seq: int) -> None:
        """Drop one entry (a create that found its record already written by an earlier one)."""
        try:
            await self._js.delete_msg(INDEX_STREAM, seq)
        except APIError as exc:
            if exc.err_code != _NO_MESSAGE:
                raise

    async def last(self, project: str) -> Entry | None:
        """The project's newest entry (pending 0), or None for a project without tasks."""
        try:
            msg = await self._js.get_msg(INDEX_STREAM, subject=index_subject(project), direct=True)
        except NotFoundError:
            return None
        task = tasks_pb2.Task()
        task.ParseFromString(msg.data or b"")
        return Entry(seq=int(msg.seq or 0), task=task, pending=0)

    async def forward(self, project: str, start: int, count: int) -> list[Entry]:
        """Up to ``count`` of the project's entries with ``seq >= start``, oldest first: one request."""
        count = max(1, min(count, _MAX_BATCH))
        inbox = self._nc.new_inbox()
        sub = await self._nc.subscribe(inbox)
        request = {"seq": max(start, 1), "next_by_subj": index_subject(project), "batch": count}
        try:
            await self._nc.publish(
                f"$JS.API.DIRECT.GET.{INDEX_STREAM}", json.dumps(request).encode(), reply=inbox
            )
            found: list[Entry] = []
            while True:
                msg = await sub.next_msg(timeout=_READ_TIMEOUT_S)
                status = (msg.headers or {}).get("Status")
                if status == "404" or (status is not None and status.startswith("2")):
                    return found  # 404: nothing at or after start; 204: end of batch
                if status is not None:
                    raise APIError.from_msg(msg)
                found.append(_entry(msg))
        finally:
            await sub.unsubscribe()

    async def _count_from(self, project: str, seq: int) -> int:
        """How many of the project's entries have ``seq >= seq``: one probe."""
        first = await self.forward(project, seq, 1)
        return first[0].pending + 1 if first else 0

    async def backward(self, project: str, end: int, count: int) -> list[Entry]:
        """At least ``count`` (fewer only at the start of the stream) and at most a quarter more
        of the project's entries with ``seq < end``, newest first, contiguous below ``end``."""
        count = max(1, min(count, _MAX_BATCH // 2 - 16))
        most = count + count // 4 + 8
        if end <= 1:
            return []
        after = await self._count_from(project, end)
        low, high = 1, end  # count(low) >= count(lo) >= count(high) = 0
        lo = max(1, end - count)
        held = 0
        for _ in range(_PROBES):
            held = await self._count_from(project, lo) - after
            if count <= held <= most or (lo == 1 and held < count):
                break
            if held < count:
                high = lo
            else:
                low = lo
            if high - low <= 1:
                lo = low
                held = await self._count_from(project, lo) - after
                break
            lo = _next_guess(end, lo, held, count, most, low, high)
        if held <= 0:
            return []
        chunk = [e for e in await self.forward(project, lo, min(held, _MAX_BATCH)) if e.seq < end]
        chunk.reverse()
        return chunk

    async def _first_after(self, project: str, cursor: str, last: Entry) -> int:
        """The sequence of the first entry whose id sorts after ``cursor``.

        Interpolates on the creation time the ids carry (one or two probes when creates were
        spread evenly), bisecting every other probe when that does not halve the range, so the
        worst case stays twice log2 of the stream's length."""
        lo, hi = 1, last.seq + 1
        t_lo, t_hi, target = None, _millis(last.task.id), _millis(cursor)
        bisect = False
        while lo < hi:
            mid = (lo + hi) // 2
            if not bisect and None not in (t_lo, t_hi, target) and t_hi != t_lo:
                share = (target - t_lo) / (t_hi - t_lo)  # type: ignore[operator]
                mid = min(hi - 1, max(lo, lo + int((hi - lo) * share)))
            width = hi - lo
            probe = await self.forward(project, mid, 1)
            if not probe or probe[0].seq >= hi or probe[0].task.id > cursor:
                hi = mid
                t_hi = _millis(probe[0].task.id) if probe else t_hi
            else:
                lo = probe[0].seq + 1
                t_lo = _millis(probe[0].task.id)
            bisect = not bisect and hi - lo > width // 2
        return lo

    async def split(self, project: str, cursor: str) -> Split:
        """Where ``cursor`` (a task id, existing or not) divides the project's entries."""
        last = await self.last(project)
        if last is None:
            return Split(below=1, above=1)
        # No shortcut for a cursor past the newest id: creates commit out of id order (an id is
        # minted before its append), so the cursor may still sit among the last entries.
        lo = await self._first_after(project, cursor, last)
        below, above = await asyncio.gather(
            self.backward(project, lo, _NEIGHBOURS), self.forward(project, lo, _NEIGHBOURS)
        )
        for entry in below + above:
            if entry.task.id == cursor:
                return Split(below=entry.seq, above=entry.seq + 1)
        return Split(below=lo, above=lo)


def _millis(task_id: str) -> int | None:
    """The creation time a task id carries (``taskkit.ids``), or None for a string that is no id."""
    head = task_id.partition("_")[2][:8]
    try:
        return int(head, 36) if len(head) == 8 else None
    except ValueError:
        return None


def _next_guess(end: int, lo: int, held: int, count: int, most: int, low: int, high: int) -> int:
    """Interpolate the window start that would hold about ``(count + most) / 2`` entries, assuming
    the project's share of the stream is even; fall back to bisection outside the bracket."""
    want = (count + most) // 2
    span = end - lo
    guess = end - span * 8 if held == 0 else end - (span * want) // held
    if not low < guess < high:
        guess = (low + high) // 2
    return max(1, guess)


async def backfill(js: JetStreamContext, bucket_stream: str, bucket_prefix: str) -> int:
    """Index every record of the task bucket, once, when the index is empty and the bucket is not
    (records created before the index existed). Each project's entries go in id order, with
    ``Nats-Msg-Id`` = task id, so two processes starting together append each task once.
    Returns how many entries were written."""
    index = await js.stream_info(INDEX_STREAM)
    records = await js.stream_info(bucket_stream)
    if index.state.messages or not records.state.messages:
        return 0
    stubs: list[tuple[str, tasks_pb2.Task]] = []  # (project, stub): not whole records, in memory
    sub = await js.subscribe(
        f"{bucket_prefix}>", ordered_consumer=True, deliver_policy=DeliverPolicy.LAST_PER_SUBJECT
    )
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=_READ_TIMEOUT_S)
            except NatsTimeoutError:
                break
            if not (msg.headers or {}).get("KV-Operation"):
                task = tasks_pb2.Task()
                task.ParseFromString(msg.data or b"")
                stubs.append((task.project, stub(task)))
            if msg.metadata.num_pending == 0:
                break
    finally:
        await sub.unsubscribe()
    await _append(js, sorted(stubs, key=lambda entry: (entry[0], entry[1].id)))
    return len(stubs)


async def _append(js: JetStreamContext, entries: Iterable[tuple[str, tasks_pb2.Task]]) -> None:
    pending = []
    for project, kept in entries:
        pending.append(
            await js.publish_async(
                index_subject(project), kept.SerializeToString(), headers={"Nats-Msg-Id": kept.id}
            )
        )
        if len(pending) >= _BACKFILL_BATCH:
            for future in pending:
                await future
            pending.clear()
    for future in pending:
        await future
