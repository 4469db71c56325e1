"""The ``transmute.media.v1.Media`` service: validate a kind's options, then create the task."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf.message import Message
from transmute.media.v1 import media_pb2, media_pb2_grpc
from transmute.tasks.v1 import tasks_pb2

from media_service.options import parse_audio_options, parse_image_options, parse_video_options
from taskkit import options_json
from taskkit.creator import TaskCreator
from taskkit.errors import Unimplemented
from taskkit.project import project_of
from taskkit.signing import check_key

Parser = Callable[[dict[str, Any]], Any]


def check_spec(spec: tasks_pb2.TaskSpec) -> None:
    """``folder`` and ``filename`` become part of storage keys: keep them path-safe."""
    if spec.HasField("folder"):
        check_key(spec.folder.strip("/"))
    if spec.HasField("filename"):
        check_key(spec.filename)


class MediaServicer(media_pb2_grpc.MediaServicer):
    def __init__(self, creator: TaskCreator) -> None:
        self._creator = creator

    async def _create(
        self, kind: str, request: Any, parse: Parser, context: grpc.aio.ServicerContext
    ) -> tasks_pb2.Task:
        project = project_of(context)
        options: Message = request.options
        parsed = parse(options_json.to_api(options))
        check_spec(request.spec)
        return await self._creator.create(
            project=project, kind=kind, spec=request.spec, options=parsed.to_dict()
        )

    async def CreateVideoTask(
        self, request: media_pb2.CreateVideoTaskRequest, context: grpc.aio.ServicerContext
    ) -> tasks_pb2.Task:
        return await self._create("video", request, parse_video_options, context)

    async def CreateImageTask(
        self, request: media_pb2.CreateImageTaskRequest, context: grpc.aio.ServicerContext
    ) -> tasks_pb2.Task:
        return await self._create("image", request, parse_image_options, context)

    async def CreateAudioTask(
        self, request: media_pb2.CreateAudioTaskRequest, context: grpc.aio.ServicerContext
    ) -> tasks_pb2.Task:
        return await self._create("audio", request, parse_audio_options, context)

    async def CreateAdaptiveVideoTask(
        self, request: media_pb2.CreateAdaptiveVideoTaskRequest, context: grpc.aio.ServicerContext
    ) -> tasks_pb2.Task:
        raise Unimplemented("The 'adaptive_video' kind is not available on this deployment yet.")
