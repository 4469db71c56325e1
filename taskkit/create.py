"""The Create RPCs of every family: parse the kind's options once, check the spec, create the task.

A family's servicer is a list of one-line methods, each calling ``CreateHelper.create`` with its
kind's name; the rules themselves live in the kind's parser (``Kind.parse``). A repeated create (an
``idempotency-key`` or a proposed ``transmute-task-id``, see ``taskkit.request_ids``) returns the
task it made the first time, with ``idempotent-replayed: true`` in the trailing metadata.
"""

from __future__ import annotations

import hashlib
from typing import Any

import grpc
from transmute.tasks.v1 import tasks_pb2

from taskkit import options_json, request_ids
from taskkit.creator import Retry, TaskCreator
from taskkit.family import Kind
from taskkit.project import project_of
from taskkit.signing import check_key


def check_spec(spec: tasks_pb2.TaskSpec) -> None:
    """``folder`` and ``filename`` become part of storage keys: keep them path-safe."""
    if spec.HasField("folder"):
        check_key(spec.folder.strip("/"))
    if spec.HasField("filename"):
        check_key(spec.filename)


def fingerprint(kind: str, request: Any) -> str:
    """What makes two creates "the same request" for an idempotency key: the kind and the request
    message (deterministically serialized, so JSON key order does not matter)."""
    return hashlib.sha256(kind.encode() + b"\0" + request.SerializeToString(deterministic=True)).hexdigest()


class CreateHelper:
    """Validates and creates tasks of one family's kinds."""

    def __init__(self, creator: TaskCreator, kinds: tuple[Kind, ...]) -> None:
        self._creator = creator
        self._kinds = {kind.name: kind for kind in kinds}

    async def create(self, kind: str, request: Any, context: grpc.aio.ServicerContext) -> tasks_pb2.Task:
        """``request`` is the kind's Create request: ``spec`` plus typed ``options``."""
        project = project_of(context)
        key, task_id = request_ids.from_context(context)
        parsed = self._kinds[kind].parse(options_json.to_api(request.options))
        check_spec(request.spec)
        created = await self._creator.create(
            project=project,
            kind=kind,
            spec=request.spec,
            options=parsed.to_dict(),
            retry=Retry(idempotency_key=key, fingerprint=fingerprint(kind, request), task_id=task_id),
        )
        if created.replayed:
            context.set_trailing_metadata(((request_ids.REPLAYED_KEY, "true"),))
        return created.task
