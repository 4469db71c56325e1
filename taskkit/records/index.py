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

Every stored task must have exactly one entry, or listings miss it (or show it twice). Creates
write the entry first; a record without one (written before the index existed, by a process older
than it, or left by an index that lost entries) is given one at start-up by ``backfill``, which
rewrites the project's index in id order, since entries cannot be inserted into a stream.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.errors import APIError, NotFoundError
from transmute.tasks.v1 import tasks_pb2

log = logging.getLogger(__name__)

INDEX_STREAM = "TASK_INDEX"
INDEX_SUBJECTS = ["index.>"]
_READ_TIMEOUT_S = 5.0
_PUBLISH_TIMEOUT_S = 5.0
_MAX_BATCH = 256
_PROBES = 48  # bisection of a 2^48-message stream; interpolation usually needs 1-3
_NEIGHBOURS = 8  # entries either side of a cursor's split searched for the cursor itself
_NO_MESSAGE = 10057
_BACKFILL_BATCH = 1000  # copy entries published before their acks are awaited
_READ_GROUP = 64  # records read, or entries deleted, at once
_SERVER_WINDOW_S = 120.0  # the duplicate window of a stream configured without one


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


class _Batch:
    """The replies to one batched direct get, gathered by the subscription's callback (cheaper per
    message than awaiting each one): entries until the end-of-batch (2xx) or nothing-found (404)
    status, or the error another status stands for."""

    def __init__(self) -> None:
        self._found: list[Entry] = []
        self._done: asyncio.Future[list[Entry]] = asyncio.get_running_loop().create_future()

    async def take(self, msg: Msg) -> None:
        if self._done.done():
            return
        status = (msg.headers or {}).get("Status")
        try:
            if status is None:
                self._found.append(_entry(msg))
            elif status == "404" or status.startswith("2"):
                self._done.set_result(self._found)
            else:
                APIError.from_msg(msg)
        except Exception as exc:  # handed to the reader: a callback's own errors would be lost
            self._done.set_exception(exc)

    async def result(self) -> list[Entry]:
        try:
            return await asyncio.wait_for(self._done, _READ_TIMEOUT_S)
        except TimeoutError:
            raise NatsTimeoutError from None


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
        request = {"seq": max(start, 1), "next_by_subj": index_subject(project), "batch": count}
        inbox = self._nc.new_inbox()
        batch = _Batch()
        sub = await self._nc.subscribe(inbox, cb=batch.take)
        try:
            await self._nc.publish(
                f"$JS.API.DIRECT.GET.{INDEX_STREAM}", json.dumps(request).encode(), reply=inbox
            )
            return await batch.result()
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


async def backfill(nc: NATS, js: JetStreamContext, bucket_stream: str, bucket_prefix: str) -> int:
    """Give every record of the task bucket an index entry, each task once, in id order: records
    written before the index existed, by processes that predate it (a rolling upgrade), or whose
    entries the stream lost. Safe to run from every process at start-up, several at once.

    Returns how many tasks had no entry and got one from this call (concurrent calls share that
    count between them). The cost, at every start, is the bucket's key list (one request per
    100,000 keys; no record is read) and one pass over the index (direct-get batches of
    ``_MAX_BATCH``), holding one id per task and one project's entries at a time: about a second
    per 30,000 tasks. Only a project found lacking entries (or holding one twice) is rewritten:
    its entries written and read once more, plus one record read per missing task."""
    if not (await js.stream_info(bucket_stream)).state.messages:
        return 0
    window = (await js.stream_info(INDEX_STREAM)).config.duplicate_window or _SERVER_WINDOW_S
    repair = _Repair(nc, js, bucket_stream, bucket_prefix, window)
    stored = await repair.stored_ids()
    added = 0
    for project in sorted(stored):
        added += await repair.project(project, stored[project])
    return added


class _Repair:
    """The repair of one project's index is a rewrite, because a stream only appends: the entries
    it keeps and the ones it lacks go in again as one copy sorted by id, then the old ones go.

    Every copy entry carries ``Nats-Msg-Id`` = ``<task id>@<generation>``, the generation being
    the sequence of the project's first entry (0 for none), which a repair does not change until
    it deletes that entry. So processes repairing a project at once publish the same ids, the
    stream keeps the first of each, and every process is told the same sequences: the copy is
    one, in order (each appends ids in ascending order, the first arrival wins). Creates that land
    in or before the copy (newer ids, not in it) are moved after it, the same way. Then every
    entry that is not the copy's, or a create after it, is deleted: first by one purge of what
    lies below the copy, then one by one. The records are listed before the index is read, and a
    create writes its entry before its record, so a record written meanwhile already has its
    entry. Until the old entries are gone listings may show a task twice; if the process stops
    before that, the next start finds the duplicates and rewrites the project again.

    Deduplication lasts the stream's duplicate window; a process that took longer than half of it
    from its first copy entry to reading the result leaves the old entries (and the duplicates)
    for the next start rather than delete what a later process may have copied."""

    def __init__(
        self, nc: NATS, js: JetStreamContext, bucket_stream: str, prefix: str, window: float
    ) -> None:
        self._index = TaskIndex(nc, js)
        self._nc = nc
        self._js = js
        self._bucket_stream = bucket_stream
        self._prefix = prefix
        self._window = window

    async def stored_ids(self) -> dict[str, set[str]]:
        """Every stored task id by project, from the bucket's per-subject state (no record is read):
        pages of up to 100,000 keys, sorted by the server. Task keys are never deleted, so a key
        written between two pages moves later keys on, never one past a page boundary unread.
        A deleted key still counts here; reading its record finds no stub for it."""
        stored: dict[str, set[str]] = {}
        offset = 0
        while True:
            request = {"subjects_filter": f"{self._prefix}>", "offset": offset}
            reply = await self._nc.request(
                f"$JS.API.STREAM.INFO.{self._bucket_stream}", json.dumps(request).encode(), _READ_TIMEOUT_S
            )
            answer = json.loads(reply.data)
            if "error" in answer:
                APIError.from_error(answer["error"])
            subjects = (answer.get("state") or {}).get("subjects") or {}
            for subject in subjects:
                project, _, task_id = subject[len(self._prefix) :].rpartition(".")
                stored.setdefault(project, set()).add(task_id)
            offset += len(subjects)
            if not subjects or offset >= int(answer.get("total") or 0):
                return stored

    async def project(self, project: str, stored: set[str]) -> int:
        """Repair one project's index if it lacks a stored task or holds one twice."""
        entries = await self._entries(project)
        indexed = {entry.task.id: entry.task for entry in reversed(entries)}  # the first of each
        missing = stored - indexed.keys()
        if not missing and len(indexed) == len(entries):
            return 0
        found = await self._stubs(project, sorted(missing))
        generation = entries[0].seq if entries else 0
        began = time.monotonic()
        copy = sorted([*indexed.values(), *found], key=lambda kept: kept.id)
        placed = await self._publish(project, copy, generation)
        doomed = await self._settle(project, generation, placed)
        if time.monotonic() - began > self._window / 2:
            log.warning("index repair too slow to delete safely", extra={"project": project})
        else:
            await self._delete(project, doomed, min(seq for seq, _ in placed.values()))
        added = sum(not placed[kept.id][1] for kept in found)
        log.info("index repaired", extra={"project": project, "added": added})
        return added

    async def _entries(self, project: str) -> list[Entry]:
        """All of the project's entries, oldest first."""
        entries: list[Entry] = []
        while chunk := await self._index.forward(project, entries[-1].seq + 1 if entries else 1, _MAX_BATCH):
            entries.extend(chunk)
        return entries

    async def _stubs(self, project: str, task_ids: list[str]) -> list[tasks_pb2.Task]:
        """The index stubs of these tasks, from their records (skipping any deleted meanwhile)."""

        async def one(task_id: str) -> tasks_pb2.Task | None:
            subject = f"{self._prefix}{project}.{task_id}"
            try:
                msg = await self._js.get_msg(self._bucket_stream, subject=subject)
            except NotFoundError:
                return None
            if (msg.headers or {}).get("KV-Operation"):
                return None
            return stub(tasks_pb2.Task.FromString(msg.data or b""))

        found: list[tasks_pb2.Task] = []
        for at in range(0, len(task_ids), _READ_GROUP):
            group = await asyncio.gather(*(one(t) for t in task_ids[at : at + _READ_GROUP]))
            found.extend(kept for kept in group if kept is not None)
        return found

    async def _publish(
        self, project: str, stubs: list[tasks_pb2.Task], generation: int
    ) -> dict[str, tuple[int, bool]]:
        """Append the stubs in order as copy entries; each task id's (sequence, whether another
        process had appended it already)."""
        placed: dict[str, tuple[int, bool]] = {}
        for at in range(0, len(stubs), _BACKFILL_BATCH):
            batch = stubs[at : at + _BACKFILL_BATCH]
            pending = [
                await self._js.publish_async(
                    index_subject(project),
                    kept.SerializeToString(),
                    headers={"Nats-Msg-Id": f"{kept.id}@{generation}"},
                )
                for kept in batch
            ]
            for kept, future in zip(batch, pending, strict=True):
                ack = await future
                placed[kept.id] = (int(ack.seq), bool(ack.duplicate))
        return placed

    async def _settle(self, project: str, generation: int, placed: dict[str, tuple[int, bool]]) -> list[int]:
        """Read the project's entries again, after the copy: move the creates that landed before
        its end (ids the copy does not hold) after it, and return the sequences to delete (every
        entry of a copied id but the copy's own, and the moved creates' first entries)."""
        end = max(seq for seq, _ in placed.values())
        doomed: list[int] = []
        strays: list[Entry] = []
        for entry in await self._entries(project):
            own = placed.get(entry.task.id)
            if own is not None and own[0] != entry.seq:
                doomed.append(entry.seq)
            elif own is None and entry.seq < end:
                strays.append(entry)
        moved = await self._publish(project, [entry.task for entry in strays], generation)
        placed.update(moved)
        # an entry that is its own move is another process's copy of a create this one missed
        doomed.extend(entry.seq for entry in strays if moved[entry.task.id][0] != entry.seq)
        return doomed

    async def _delete(self, project: str, doomed: list[int], below: int) -> None:
        """Purge the project's entries below the copy (all of them doomed), then delete the rest."""
        await self._js.purge_stream(INDEX_STREAM, subject=index_subject(project), seq=below)
        rest = [seq for seq in doomed if seq >= below]
        for at in range(0, len(rest), _READ_GROUP):
            await asyncio.gather(*(self._index.remove(seq) for seq in rest[at : at + _READ_GROUP]))
