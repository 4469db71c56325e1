"""The Create RPCs of every family: parse the kind's options once, check the spec, create the task.

A family's servicer is a list of one-line methods, each calling ``CreateHelper.create`` with its
kind's name; the rules themselves live in the kind's parser (``Kind.parse``).
"""

from __future__ import annotations

from typing import Any

import grpc
from transmute.tasks.v1 import tasks_pb2

from taskkit import options_json
from taskkit.creator import TaskCreator
from taskkit.family import Kind
from taskkit.project import project_of
from taskkit.signing import check_key


def check_spec(spec: tasks_pb2.TaskSpec) -> None:
    """``folder`` and ``filename`` become part of storage keys: keep them path-safe."""
    if spec.HasField("folder"):
        check_key(spec.folder.strip("/"))
    if spec.HasField("filename"):
        check_key(spec.filename)


class CreateHelper:
    """Validates and creates tasks of one family's kinds."""

    def __init__(self, creator: TaskCreator, kinds: tuple[Kind, ...]) -> None:
        self._creator = creator
        self._kinds = {kind.name: kind for kind in kinds}

    async def create(self, kind: str, request: Any, context: grpc.aio.ServicerContext) -> tasks_pb2.Task:
        """``request`` is the kind's Create request: ``spec`` plus typed ``options``."""
        project = project_of(context)
        parsed = self._kinds[kind].parse(options_json.to_api(request.options))
        check_spec(request.spec)
        return await self._creator.create(
            project=project, kind=kind, spec=request.spec, options=parsed.to_dict()
        )
