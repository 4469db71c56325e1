"""The worker loop shared by every family: pull → lease → fetch → probe → run → upload → record → ack.

One durable pull consumer per family on ``work.<family>.>``. Each process runs up to
``worker_concurrency`` tasks at once (its own semaphore; the consumer's ``max_ack_pending`` is
cluster-wide, so it is not the per-process limit). The lease is the message's ack deadline,
kept alive by ``in_progress()`` on every progress tick and by a heartbeat while fetching or
uploading. A worker that dies loses its lease and another worker redoes the task; outputs
have deterministic keys, so the redo overwrites them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js.api import AckPolicy, ConsumerConfig
from transmute.tasks.v1 import tasks_pb2

from taskkit import options_json, status
from taskkit.config import Settings
from taskkit.errors import Cancelled, Conflict, InputError, InvalidRequest, NotFound, TransientError
from taskkit.ffmpeg import run_ffmpeg
from taskkit.inputs import fetch_input
from taskkit.jetstream import WORK_STREAM, Bus, cancel_subject
from taskkit.probe import ProbeResult, file_entry, probe
from taskkit.sandbox import Identity, Sandbox
from taskkit.storage import Storage
from taskkit.store import TaskStore, mark_failed, split_key

log = logging.getLogger(__name__)

_FETCH_WAIT_S = 1.0
_FETCH_RETRY_S = 1.0
_NAK_DELAY_S = 2.0
_MAX_ACK_PENDING = 10_000


@dataclass
class Output:
    """A file a handler produced: its local path, storage name and the entry to record."""

    path: Path
    name: str
    entry: tasks_pb2.FileEntry


@dataclass
class TaskContext:
    """What a kind's handler gets: the task, its probed input, a work dir, and progress/ffmpeg hooks."""

    task: tasks_pb2.Task
    options: dict
    input_path: Path
    probe: ProbeResult
    workdir: Path
    settings: Settings
    cancel: asyncio.Event
    report: Callable[[int], Awaitable[None]]
    identity: Identity | None = None  # the uid this task's ffmpeg runs as (taskkit/sandbox.py)

    async def ffmpeg(self, argv: list[str], *, duration: float | None) -> None:
        """Run one ffmpeg argv with progress, cancel, the per-task time limit and the sandbox wired in."""
        await run_ffmpeg(
            argv,
            duration=duration,
            on_progress=self.report,
            timeout=self.settings.task_timeout_seconds,
            cancel=self.cancel,
            cwd=self.workdir,
            identity=self.identity,
        )


Handler = Callable[[TaskContext], Awaitable[list[Output]]]


@dataclass
class _Lease:
    msg: Msg
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    job: asyncio.Task[None] | None = None
    last_progress: int = -1
    last_write: float = 0.0


class Worker:
    """Runs one family's handlers for messages on ``work.<family>.>``."""

    def __init__(
        self,
        *,
        bus: Bus,
        store: TaskStore,
        storage: Storage,
        settings: Settings,
        family: str,
        handlers: dict[str, Handler],
    ) -> None:
        self._bus = bus
        self._store = store
        self._storage = storage
        self._settings = settings
        self._family = family
        self._handlers = handlers
        self._leases: dict[str, _Lease] = {}
        self._running: set[asyncio.Task[None]] = set()
        self._sandbox = Sandbox(settings)

    async def run(self, stop: asyncio.Event) -> None:
        """Pull and process work until ``stop`` is set, then drain within the grace period."""
        await self._sandbox.check()
        durable = f"{self._family}-workers"
        # add_consumer creates the durable or updates its editable fields, so changed settings
        # (ack_wait, max_deliver) reach the server; pull_subscribe alone never updates one.
        await self._bus.js.add_consumer(
            WORK_STREAM,
            ConsumerConfig(
                durable_name=durable,
                filter_subject=f"work.{self._family}.>",
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=self._settings.ack_wait_seconds,
                # One more delivery than attempts, so the last one can record the failure.
                max_deliver=self._settings.max_deliver + 1,
                max_ack_pending=_MAX_ACK_PENDING,
            ),
        )
        sub = await self._bus.js.pull_subscribe_bind(durable, stream=WORK_STREAM)
        cancels = await self._bus.nc.subscribe(cancel_subject("*"), cb=self._on_cancel)
        log.info("worker started", extra={"family": self._family})
        try:
            while not stop.is_set():
                free = self._settings.worker_concurrency - len(self._running)
                if free <= 0:
                    stopping = asyncio.create_task(stop.wait())
                    await asyncio.wait({*self._running, stopping}, return_when=asyncio.FIRST_COMPLETED)
                    stopping.cancel()
                    continue
                try:
                    msgs = await sub.fetch(free, timeout=_FETCH_WAIT_S)
                except TimeoutError:
                    # nats.errors.TimeoutError or a bare asyncio one: nats.py raises either,
                    # depending on where the long poll expired. Catching only the first once
                    # silently ended this loop.
                    continue
                except NatsError as exc:
                    # Reconnecting or a JetStream hiccup: keep the loop alive, retry shortly.
                    log.warning("fetching work failed; retrying", extra={"error": repr(exc)})
                    await asyncio.sleep(_FETCH_RETRY_S)
                    continue
                for msg in msgs:
                    job = asyncio.create_task(self._handle(msg))
                    self._running.add(job)
                    job.add_done_callback(self._running.discard)
        finally:
            await self._drain()  # still listening for cancels meanwhile
            await cancels.unsubscribe()
            await sub.unsubscribe()

    async def _drain(self) -> None:
        """Let in-flight tasks finish within the grace period; release the rest for redelivery."""
        if not self._running:
            return
        _, pending = await asyncio.wait(self._running, timeout=self._settings.shutdown_grace_seconds)
        for job in pending:
            job.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _on_cancel(self, msg: Msg) -> None:
        """Stop the task wherever it is: fetching, encoding or uploading."""
        lease = self._leases.get(msg.subject.rsplit(".", 1)[-1])
        if lease is not None:
            lease.cancel.set()
            if lease.job is not None:
                lease.job.cancel()

    async def _handle(self, msg: Msg) -> None:
        key = msg.data.decode()
        _, task_id = split_key(key)
        attempt = msg.metadata.num_delivered
        lease = _Lease(msg, job=asyncio.current_task())
        self._leases[task_id] = lease
        heartbeat = asyncio.create_task(self._heartbeat(msg))
        try:
            await self._process(key, attempt, lease)
            await msg.ack()
        except asyncio.CancelledError:
            if lease.cancel.is_set():
                await _quietly(msg.ack())  # the user cancelled it: done
                return
            # Shutdown past the grace period: hand the task to another worker now.
            await _quietly(msg.nak())
            raise
        except (Cancelled, Conflict, NotFound):
            await msg.ack()  # cancelled or gone: nothing left to do
        except (InputError, InvalidRequest) as exc:
            await self._fail(key, exc.message)
            await msg.term()
        except TransientError as exc:
            await self._retry_or_fail(key, msg, attempt, exc.message)
        except Exception:
            log.exception("task crashed", extra={"task_id": task_id})
            await self._retry_or_fail(key, msg, attempt, "an internal error stopped the task")
        finally:
            heartbeat.cancel()
            self._leases.pop(task_id, None)

    async def _retry_or_fail(self, key: str, msg: Msg, attempt: int, reason: str) -> None:
        if attempt >= self._settings.max_deliver:
            await self._fail(key, f"{reason} (gave up after {attempt} attempts)")
            await msg.term()
        else:
            await msg.nak(delay=_NAK_DELAY_S)

    async def _fail(self, key: str, message: str) -> None:
        with contextlib.suppress(Conflict, NotFound):
            await self._store.mutate(key, mark_failed(message))
        log.info("task failed", extra={"task_id": split_key(key)[1], "error": message})

    async def _heartbeat(self, msg: Msg) -> None:
        interval = max(self._settings.ack_wait_seconds / 3, 0.5)
        while True:
            await asyncio.sleep(interval)
            await _quietly(msg.in_progress())

    async def _process(self, key: str, attempt: int, lease: _Lease) -> None:
        task = await self._store.get_by_key(key)
        if status.is_terminal(task.status):
            return
        if attempt > self._settings.max_deliver:
            # Every attempt died without recording an outcome (e.g. workers killed mid-task).
            await self._fail(key, f"the task was abandoned after {attempt - 1} attempts")
            return
        handler = self._handlers.get(task.kind)
        if handler is None:
            raise InvalidRequest(f"this worker cannot run '{task.kind}' tasks")

        def start(t: tasks_pb2.Task) -> None:
            if t.status in (status.WAITING, status.QUEUED):
                t.status = status.VALIDATING  # a redo keeps the later status it had reached
            t.attempts = attempt
            if not t.HasField("started_at"):
                t.started_at = int(time.time())

        task = await self._store.mutate(key, start)
        log.info("task started", extra={"task_id": task.id, "kind": task.kind, "attempt": attempt})
        workdir = Path(tempfile.mkdtemp(prefix=f"{task.id}-", dir=self._settings.work_dir))
        try:
            with self._sandbox.lease(workdir) as identity:
                await self._run_in(workdir, identity, key, task, handler, lease)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    async def _run_in(
        self,
        workdir: Path,
        identity: Identity | None,
        key: str,
        task: tasks_pb2.Task,
        handler: Handler,
        lease: _Lease,
    ) -> None:
        """Fetch, probe, run the handler and record the outputs, inside the task's work dir."""
        input_path = workdir / "input"
        await fetch_input(task.url, input_path, settings=self._settings, storage=self._storage)
        probed = await probe(input_path)
        check_limits(probed, self._settings)
        inputs = [file_entry(probed, kind="source")]

        def validated(t: tasks_pb2.Task) -> None:
            del t.inputs[:]
            t.inputs.extend(inputs)
            t.status = max(t.status, status.PROCESSING)
            if not t.HasField("progress"):
                t.progress = 0

        await self._store.mutate(key, validated)
        context = TaskContext(
            task=task,
            options=options_json.struct_to_dict(task.options),
            input_path=input_path,
            probe=probed,
            workdir=workdir,
            settings=self._settings,
            cancel=lease.cancel,
            report=lambda pct: self._report(key, lease, pct),
            identity=identity,
        )
        outputs = await handler(context)
        if lease.cancel.is_set():
            raise Cancelled("the task was cancelled")
        await self._store.mutate(key, _set_status(status.FINISHING))
        entries: list[tasks_pb2.FileEntry] = []
        for output in outputs:
            if lease.cancel.is_set():
                await self._discard(entries)
                raise Cancelled("the task was cancelled")
            storage_key = f"{task.project}/{task.id}/{output.name}"
            output.entry.filesize = await self._storage.put_file(storage_key, output.path)
            output.entry.key = storage_key
            entries.append(output.entry)

        def succeeded(t: tasks_pb2.Task) -> None:
            del t.outputs[:]
            t.outputs.extend(entries)
            t.status = status.SUCCEEDED
            t.progress = 100
            t.finished_at = int(time.time())

        try:
            await self._store.mutate(key, succeeded)
        except Conflict:
            await self._discard(entries)  # cancelled while uploading: keep no orphans
            raise
        log.info("task succeeded", extra={"task_id": task.id, "outputs": len(entries)})

    async def _discard(self, entries: list[tasks_pb2.FileEntry]) -> None:
        for entry in entries:
            with contextlib.suppress(Exception):
                await self._storage.delete(entry.key)

    async def _report(self, key: str, lease: _Lease, pct: int) -> None:
        """Record progress (throttled), extend the lease, and notice a cancel made elsewhere."""
        await _quietly(lease.msg.in_progress())
        now = time.monotonic()
        if pct <= lease.last_progress or (
            pct < 100 and now - lease.last_write < self._settings.progress_interval_seconds
        ):
            return
        lease.last_progress, lease.last_write = pct, now

        def change(t: tasks_pb2.Task) -> None:
            if not t.HasField("progress") or pct > t.progress:
                t.progress = pct

        try:
            await self._store.mutate(key, change)
        except Conflict:
            lease.cancel.set()  # the record went terminal (cancelled) under us
        except Exception as exc:
            # Progress is best effort: a NATS hiccup must not kill a healthy encode.
            log.warning("progress not recorded", extra={"task_id": split_key(key)[1], "error": repr(exc)})


def _set_status(new: int) -> Callable[[tasks_pb2.Task], None]:
    def change(t: tasks_pb2.Task) -> None:
        t.status = new

    return change


def check_limits(probed: ProbeResult, settings: Settings) -> None:
    """Refuse inputs too long or too large in pixels before any decoding work is spent on them."""
    if probed.duration is not None and probed.duration > settings.max_duration_seconds:
        raise InputError(
            f"the input is {probed.duration:.0f} seconds long, over the limit of "
            f"{settings.max_duration_seconds:.0f} seconds"
        )
    if probed.video is not None and probed.video.width * probed.video.height > settings.max_pixels:
        raise InputError(
            f"the input is {probed.video.width}x{probed.video.height} pixels, over the limit of "
            f"{settings.max_pixels} pixels"
        )


async def _quietly(aw: Awaitable[object]) -> None:
    """Acks and heartbeats after the connection dropped must not mask the real outcome."""
    with contextlib.suppress(Exception):
        await aw
