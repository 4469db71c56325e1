"""The Create RPCs of every family: parse the kind's options once, check the spec, create the task.

A family's servicer is generated (:func:`servicer_for`): one ``Create<Kind>Task`` method per kind,
each calling ``CreateHelper.create`` with its kind's name; the rules themselves live in the kind's
parser (``Kind.parse``). A repeated create (an
``idempotency-key`` or a proposed ``transmute-task-id``, see ``taskkit.rpc.metadata``) returns the
task it made the first time, with ``idempotent-replayed: true`` in the trailing metadata.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import grpc
from transmute.tasks.v1 import tasks_pb2

from taskkit.config import Settings
from taskkit.errors import InputError, InvalidRequest, Unimplemented
from taskkit.fetch import check_scheme, check_url_literal
from taskkit.options import proto_json
from taskkit.records import json_values
from taskkit.records.creator import Retry, TaskCreator
from taskkit.rpc import metadata
from taskkit.rpc.kinds import kind_of_rpc, rpc_name
from taskkit.rpc.metadata import project_of
from taskkit.runtime.family import Kind
from taskkit.runtime.inputs import own_file_key
from taskkit.storage.signing import check_key

MAX_FOLDER_CHARS = 512
MAX_FILENAME_CHARS = 200  # with the folder, the task's prefix and package paths, within a key


def check_spec(spec: tasks_pb2.TaskSpec, settings: Settings) -> None:
    """Every check of a create's spec, in this one place (the gateway only parses JSON; the
    write protocol in ``taskkit.records.creator`` only writes): what can be judged without
    fetching anything. ``folder`` and ``filename`` become part of storage keys (path-safe and
    short enough for every backend), ``metadata`` is bounded and renderable, the input URL is
    given, absolute http(s), and one that names a private address outright is refused now rather
    than failing in a worker (names are resolved and checked again there)."""
    for name, limit in (("folder", MAX_FOLDER_CHARS), ("filename", MAX_FILENAME_CHARS)):
        if spec.HasField(name):
            value = getattr(spec, name)
            if len(value) > limit:
                raise InvalidRequest(f"'{name}' is {len(value)} characters; the limit is {limit}.")
            check_key(value.strip("/") if name == "folder" else value)
    json_values.check_metadata(
        json_values.struct_to_dict(spec.metadata),
        max_depth=settings.max_metadata_depth,
        max_bytes=settings.max_metadata_bytes,
    )
    if not spec.url:
        raise InvalidRequest("The 'url' field is required.", kind="url_required")
    try:
        check_scheme(spec.url)
        if own_file_key(spec.url, settings) is None:  # our own links are read from storage
            check_url_literal(spec.url, allow_private=settings.allow_private_urls)
    except InputError as exc:
        raise InvalidRequest(exc.message[:1].upper() + exc.message[1:] + ".") from None


def fingerprint(kind: str, request: Any) -> str:
    """What makes two creates "the same request" for an idempotency key: the kind and the request
    message (deterministically serialized, so JSON key order does not matter)."""
    return hashlib.sha256(kind.encode() + b"\0" + request.SerializeToString(deterministic=True)).hexdigest()


class CreateHelper:
    """Validates and creates tasks of one family's kinds."""

    def __init__(self, creator: TaskCreator, kinds: tuple[Kind, ...], settings: Settings) -> None:
        self._creator = creator
        self._settings = settings
        self._kinds = {kind.name: kind for kind in kinds}

    async def create(self, kind: str, request: Any, context: grpc.aio.ServicerContext) -> tasks_pb2.Task:
        """``request`` is the kind's Create request: ``spec`` plus typed ``options``."""
        project = project_of(context)
        key, task_id = metadata.from_context(context)
        parsed = self._kinds[kind].parse(proto_json.to_api(request.options))
        check_spec(request.spec, self._settings)
        created = await self._creator.create(
            project=project,
            kind=kind,
            spec=request.spec,
            options=parsed.to_dict(),
            retry=Retry(idempotency_key=key, fingerprint=fingerprint(kind, request), task_id=task_id),
        )
        if created.replayed:
            context.set_trailing_metadata(((metadata.REPLAYED_KEY, "true"),))
        return created.task


def servicer_for(base: type, kinds: Iterable[str]) -> Callable[[CreateHelper], object]:
    """A servicer class over the generated ``base`` whose Create RPC of each kind calls the
    helper; a kind without its RPC in the proto is a programming error, found at import."""

    def init(self: Any, create: CreateHelper) -> None:
        self._create = create

    def method(kind: str) -> Callable[..., Awaitable[tasks_pb2.Task]]:
        async def create_task(self: Any, request: Any, context: grpc.aio.ServicerContext) -> tasks_pb2.Task:
            return await self._create.create(kind, request, context)

        create_task.__name__ = rpc_name(kind)
        return create_task

    def unavailable(kind: str) -> Callable[..., Awaitable[tasks_pb2.Task]]:
        async def create_task(self: Any, request: Any, context: grpc.aio.ServicerContext) -> tasks_pb2.Task:
            raise Unimplemented(f"The '{kind}' kind is not available on this deployment yet.")

        return create_task

    methods: dict[str, Any] = {"__init__": init}
    for name in dir(base):  # RPCs of the proto this family does not run yet: a clear 501
        if (declared := kind_of_rpc(name)) is not None:
            methods[name] = unavailable(declared)
    for kind in kinds:
        if not hasattr(base, rpc_name(kind)):
            raise TypeError(f"{base.__name__} has no {rpc_name(kind)} RPC for kind {kind}")
        methods[rpc_name(kind)] = method(kind)
    return type(base.__name__, (base,), methods)
