"""The worker loop shared by every family: pull → lease → fetch → probe → run → upload → record → ack.

One durable pull consumer per kind (``<family>-<kind>`` on ``work.<family>.<kind>``), so a process
only ever pulls kinds it runs (``TRANSMUTE_KINDS``); a kind no running worker handles stays queued.
Each process runs up to ``worker_concurrency`` tasks at once, across its kinds (one semaphore; the
consumers' ``max_ack_pending`` is cluster-wide, so it is not the per-process limit). The lease is the
message's ack deadline, kept alive by ``in_progress()`` on every progress tick and by a heartbeat
while fetching or uploading. A worker that dies loses its lease and another worker redoes the task;
outputs have deterministic keys, so the redo overwrites them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js.api import AckPolicy, ConsumerConfig
from transmute.tasks.v1 import tasks_pb2

from taskkit.config import Settings
from taskkit.errors import Cancelled, Conflict, InputError, InvalidRequest, NotFound, TransientError
from taskkit.media.probe import ProbeResult, file_entry, probe
from taskkit.media.sandbox import Identity, Sandbox
from taskkit.records import json_values, status
from taskkit.records.jetstream import WORK_STREAM, Bus, cancel_subject, work_consumer, work_subject
from taskkit.records.store import TaskStore, mark_failed, split_key
from taskkit.runtime.context import TaskContext
from taskkit.runtime.family import Kind, budget
from taskkit.runtime.inputs import fetch_input
from taskkit.runtime.outcome import set_result
from taskkit.runtime.progress import Progress
from taskkit.runtime.uploads import discard, store_outputs
from taskkit.storage.base import Storage

log = logging.getLogger(__name__)

_FETCH_WAIT_S = 1.0
_FETCH_WAIT_CONTENDED_S = 0.1  # when another kind waits for a slot: hand it over soon
_FETCH_RETRY_S = 1.0
_NAK_DELAY_S = 2.0
_MAX_ACK_PENDING = 10_000


@dataclass
class _Lease:
    msg: Msg
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    job: asyncio.Task[None] | None = None
    last_progress: int = -1
    last_write: float = 0.0


class Worker:
    """Runs one family's kinds: a pull loop per kind, one concurrency limit for the process."""

    def __init__(
        self,
        *,
        bus: Bus,
        store: TaskStore,
        storage: Storage,
        settings: Settings,
        family: str,
        kinds: tuple[Kind, ...],
        resources: Mapping[str, Any] | None = None,
    ) -> None:
        self._bus = bus
        self._store = store
        self._storage = storage
        self._settings = settings
        self._family = family
        self._kinds = {kind.name: kind for kind in kinds}
        self._resources = resources or {}
        self._leases: dict[str, _Lease] = {}
        self._running: set[asyncio.Task[None]] = set()
        self._sandbox = Sandbox(settings)
        self._slots = asyncio.Semaphore(settings.worker_concurrency)
        self._waiting_for_slot = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Pull and process work until ``stop`` is set, then drain within the grace period."""
        await self._sandbox.check()
        await self._drop_family_consumer()
        subs = [await self._subscribe(kind) for kind in self._kinds]
        cancels = await self._bus.nc.subscribe(cancel_subject("*"), cb=self._on_cancel)
        log.info("worker started", extra={"family": self._family, "kinds": sorted(self._kinds)})
        loops = [asyncio.create_task(self._pull(sub, stop)) for sub in subs]
        try:
            await stop.wait()
        finally:
            for loop in loops:
                loop.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            await self._drain()  # still listening for cancels meanwhile
            await cancels.unsubscribe()
            for sub in subs:
                await sub.unsubscribe()

    async def _drop_family_consumer(self) -> None:
        """Delete the family-wide consumer of earlier versions (``<family>-workers`` on
        ``work.<family>.>``): a work-queue stream refuses consumers whose filters overlap. Its
        unacknowledged messages stay in the stream for the per-kind consumers."""
        with contextlib.suppress(NatsError):
            await self._bus.js.delete_consumer(WORK_STREAM, f"{self._family}-workers")

    async def _subscribe(self, kind: str) -> Any:
        durable = work_consumer(self._family, kind)
        # add_consumer creates the durable or updates its editable fields, so changed settings
        # (ack_wait, max_deliver) reach the server; pull_subscribe alone never updates one.
        await self._bus.js.add_consumer(
            WORK_STREAM,
            ConsumerConfig(
                durable_name=durable,
                filter_subject=work_subject(self._family, kind),
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=self._settings.ack_wait_seconds,
                # One more delivery than attempts, so the last one can record the failure.
                max_deliver=self._settings.max_deliver + 1,
                max_ack_pending=_MAX_ACK_PENDING,
            ),
        )
        return await self._bus.js.pull_subscribe_bind(durable, stream=WORK_STREAM)

    async def _pull(self, sub: Any, stop: asyncio.Event) -> None:
        """One kind's loop: take a free slot, then long-poll for one message to run in it."""
        while not stop.is_set():
            self._waiting_for_slot += 1
            try:
                await self._slots.acquire()
            finally:
                self._waiting_for_slot -= 1
            started = False
            try:
                wait = _FETCH_WAIT_CONTENDED_S if self._waiting_for_slot else _FETCH_WAIT_S
                msgs = await sub.fetch(1, timeout=wait)
                for msg in msgs:
                    job = asyncio.create_task(self._handle(msg))
                    self._running.add(job)
                    job.add_done_callback(self._finished)
                    started = True
            except TimeoutError:
                # nats.errors.TimeoutError or a bare asyncio one: nats.py raises either,
                # depending on where the long poll expired. Catching only the first once
                # silently ended this loop.
                pass
            except NatsError as exc:
                # Reconnecting or a JetStream hiccup: keep the loop alive, retry shortly.
                log.warning("fetching work failed; retrying", extra={"error": repr(exc)})
                await asyncio.sleep(_FETCH_RETRY_S)
            finally:
                if not started:
                    self._slots.release()

    def _finished(self, job: asyncio.Task[None]) -> None:
        self._running.discard(job)
        self._slots.release()

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
        if attempt == 1 and task.status not in (status.WAITING, status.QUEUED):
            # A first delivery of a task some delivery already claimed: a second publication (the
            # sweeper re-queued it after the stream's duplicate window). The claimed copy decides.
            return
        if attempt > self._settings.max_deliver:
            # Every attempt died without recording an outcome (e.g. workers killed mid-task).
            await self._fail(key, f"the task was abandoned after {attempt - 1} attempts")
            return
        kind = self._kinds.get(task.kind)
        if kind is None:  # only if a message was published on another kind's subject
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
                await self._run_in(workdir, identity, key, task, kind, lease)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    async def _run_in(
        self,
        workdir: Path,
        identity: Identity | None,
        key: str,
        task: tasks_pb2.Task,
        kind: Kind,
        lease: _Lease,
    ) -> None:
        """Fetch, probe, run the handler within its budget and record the outcome."""
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
        limit = budget(kind, self._settings)
        context = TaskContext(
            task=task,
            # The record holds the options as validated on create; reading them back through the
            # same parser gives the handler its typed form.
            options=kind.parse(json_values.struct_to_dict(task.options)),
            input_path=input_path,
            probe=probed,
            workdir=workdir,
            settings=self._settings,
            cancel=lease.cancel,
            progress=Progress(lambda pct: self._report(key, lease, pct)),
            deadline=time.monotonic() + limit,
            storage=self._storage,
            identity=identity,
            resources=self._resources,
        )
        try:
            async with asyncio.timeout(limit):
                outcome = await kind.handler(context)
        except TimeoutError:
            raise InputError(f"processing took longer than the limit of {limit:g} seconds") from None
        if lease.cancel.is_set():
            raise Cancelled("the task was cancelled")
        await self._store.mutate(key, _set_status(status.FINISHING))
        stored = await store_outputs(
            self._storage,
            f"{task.project}/{task.id}",
            outcome.outputs,
            cancel=lease.cancel,
            concurrency=self._settings.upload_concurrency,
        )

        def succeeded(t: tasks_pb2.Task) -> None:
            del t.outputs[:]
            t.outputs.extend(stored.entries)
            if outcome.result is not None:
                set_result(t, outcome.result)
            if outcome.cache_hit is not None:
                t.cache_hit = outcome.cache_hit
            t.status = status.SUCCEEDED
            t.progress = 100
            t.finished_at = int(time.time())

        try:
            await self._store.mutate(key, succeeded)
        except BaseException:
            await asyncio.shield(discard(self._storage, stored.keys))  # e.g. cancelled meanwhile
            raise
        log.info("task succeeded", extra={"task_id": task.id, "outputs": len(stored.entries)})

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
