"""Child tasks: a handler asks another family for part of its work through that family's public
gRPC API (its address from settings; envoy in production), never by importing its package.

- **Same run, same project, linked**: the child gets ``parent_id`` = the parent and its ``run_id``;
  ``GET /tasks?parent_id=`` lists a task's children.
- **Idempotent**: the create carries an idempotency key derived from the parent and the step, and
  the request is deterministic (the input link below included), so a redelivered parent (its
  worker killed mid-task) finds the child it made before instead of making a second one.
- **No second download**: the parent stores the input it already fetched under its own task
  prefix and passes a link this deployment signed, with an expiry derived from the parent, which
  the child's worker reads straight from storage (``taskkit.runtime.inputs``). A parent whose own input
  was such a link passes that link on.
- **Followed**: ``WatchTask`` on the child; its progress is one weighted step of the parent's. A
  stream that ends early (the child's API replica restarting) is opened again where it stopped.
- **Cancel cascades**: a cancelled parent (or one out of time) cancels the child; a failed child
  fails the parent with the child's sentence (``speech failed: …``). A parent stopped because its
  worker shuts down leaves the child running: the redelivered parent finds it and follows it on.
- **The input copy is temporary**: it is deleted once the child has ended (or was cancelled), so
  a task's ``_input`` folder never outlives the child that read it.
- **A family this deployment does not run** (no address, or the kind not served) fails the parent
  at once with a sentence, not after retries.
- **No deadlock**: a parent waits while holding its worker slot, bounded by its own deadline.
  Children always belong to another family (enforced here), whose workers are other processes
  with their own slots, so parents can never fill every slot that their children need.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, Final

import grpc
from google.protobuf.message import Message
from transmute.tasks.v1 import tasks_pb2, tasks_pb2_grpc

from taskkit.errors import Cancelled, InputError, Unimplemented
from taskkit.records import status
from taskkit.rpc import metadata
from taskkit.rpc.clients import Clients
from taskkit.rpc.kinds import rpc_name
from taskkit.rpc.metadata import project_metadata
from taskkit.runtime.context import TaskContext
from taskkit.runtime.inputs import own_file_key
from taskkit.storage import signing

CREATE_TIMEOUT_S: Final = 30.0
RESUME_DELAY_S: Final = 0.5  # before following a child again on a new stream
_RESUMABLE: Final = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED})
INPUT_LINK_TTL_S: Final = 7 * 24 * 3600  # from the parent's creation: longer than any budget


def input_link(ctx: TaskContext) -> tuple[str, str | None]:
    """A link to the parent's input for the child, the same on every delivery of the parent, and
    the key the parent must first store its input under (None when the input is ours already)."""
    if own_file_key(ctx.task.url, ctx.settings) is not None:
        return ctx.task.url, None
    key = f"{ctx.task.project}/{ctx.task.id}/_input/{ctx.input_path.name}"
    secret = ctx.settings.signing_secret.get_secret_value()
    expiry = ctx.task.created_at + INPUT_LINK_TTL_S
    return ctx.settings.base_url + signing.signed_path(secret, key, expiry=expiry), key


def child_key(parent_id: str, step: str) -> str:
    return f"child-{parent_id}-{step}"


async def run_child(
    ctx: TaskContext,
    clients: Clients,
    *,
    family: str,
    kind: str,
    request: Message,
    step: str,
    own_family: str,
) -> tasks_pb2.Task:
    """Create (or find again) the child ``kind`` task on ``family`` and follow it to its end;
    return it succeeded. ``request`` is the kind's Create request with its options set; its spec
    is filled in here."""
    if family == own_family:
        raise ValueError("a child task must belong to another family (see the module docstring)")
    link, key = input_link(ctx)
    if key is not None:
        await ctx.storage.put_file(key, ctx.input_path)
    spec: tasks_pb2.TaskSpec = request.spec  # type: ignore[attr-defined]
    spec.url, spec.parent_id, spec.run_id = link, ctx.task.id, ctx.task.run_id
    project = project_metadata(ctx.task.project)
    unavailable = f"this deployment does not run {kind}, which {ctx.task.kind} needs"
    try:
        create = getattr(clients.family(family, kind), rpc_name(kind))
        tasks = tasks_pb2_grpc.TasksStub(clients.channel(family))
        child = await create(
            request,
            metadata=(*project, (metadata.IDEMPOTENCY_KEY, child_key(ctx.task.id, step))),
            timeout=CREATE_TIMEOUT_S,
        )
    except Unimplemented:
        raise InputError(unavailable) from None
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
            raise InputError(unavailable) from None
        raise
    try:
        async with asyncio.timeout(ctx.remaining()):
            done = await _follow(tasks, child, project, ctx.progress.step(step), ctx.cancel)
    except (TimeoutError, Cancelled):
        await _stop(ctx, tasks, child.id, project, key)
        raise
    except asyncio.CancelledError:
        if ctx.cancel.is_set():  # the user's cancel; a shutdown leaves the child to the redelivery
            await _stop(ctx, tasks, child.id, project, key)
        raise
    await _discard_input(ctx, key)
    if done.status != status.SUCCEEDED:
        raise InputError(f"{kind} failed: {done.error or status.name(done.status)}")
    return done


async def _follow(
    tasks: tasks_pb2_grpc.TasksStub,
    child: tasks_pb2.Task,
    project: tuple[tuple[str, str], ...],
    report: Callable[[int], Any],
    cancel: asyncio.Event,
) -> tasks_pb2.Task:
    """The child's last state, reporting its progress; Cancelled as soon as ``cancel`` is set.

    A stream that ends before the child does (its API replica restarting, an envoy in between
    draining) is opened again after the last revision seen, so a long transcription outlives any
    number of them; the caller's deadline bounds the whole wait."""
    cancelled = asyncio.ensure_future(cancel.wait())
    last, revision = child, 0
    try:
        while True:
            request = tasks_pb2.WatchTaskRequest(id=child.id)
            if revision:
                request.after_revision = revision
            call = tasks.WatchTask(request, metadata=project)
            try:
                while True:
                    read = asyncio.ensure_future(call.read())
                    await asyncio.wait({read, cancelled}, return_when=asyncio.FIRST_COMPLETED)
                    if cancelled.done():
                        read.cancel()
                        raise Cancelled("the task was cancelled")
                    try:
                        event = read.result()
                    except grpc.aio.AioRpcError as exc:
                        if exc.code() not in _RESUMABLE:
                            raise
                        break  # the stream went away: open it again
                    if event is grpc.aio.EOF:
                        break
                    last, revision = event.task, max(revision, event.revision)
                    if last.HasField("progress"):
                        await report(last.progress)
                    if status.is_terminal(last.status):
                        return last
            finally:
                call.cancel()
            await asyncio.sleep(RESUME_DELAY_S)
    finally:
        cancelled.cancel()


async def _stop(
    ctx: TaskContext,
    tasks: tasks_pb2_grpc.TasksStub,
    child_id: str,
    project: tuple[tuple[str, str], ...],
    key: str | None,
) -> None:
    """The parent ends before its child: cancel the child and drop the input copy it was reading."""
    await _cancel(tasks, child_id, project)
    await _discard_input(ctx, key)


async def _discard_input(ctx: TaskContext, key: str | None) -> None:
    """Delete the parent's copy of its input (best effort: a leftover costs space, not correctness)."""
    if key is not None:
        with contextlib.suppress(Exception):
            await asyncio.shield(ctx.storage.delete(key))


async def _cancel(
    tasks: tasks_pb2_grpc.TasksStub, task_id: str, project: tuple[tuple[str, str], ...]
) -> None:
    """Best effort: the child may have just finished (a 409), or its service be away."""
    with contextlib.suppress(grpc.aio.AioRpcError):
        await asyncio.shield(
            tasks.CancelTask(
                tasks_pb2.CancelTaskRequest(id=task_id), metadata=project, timeout=CREATE_TIMEOUT_S
            )
        )
