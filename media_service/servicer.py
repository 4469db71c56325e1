"""The ``transmute.media.v1.Media`` service: one line per kind over the shared create helper."""

from __future__ import annotations

import grpc
from transmute.media.v1 import media_pb2, media_pb2_grpc
from transmute.tasks.v1 import tasks_pb2

from taskkit.create import CreateHelper


class MediaServicer(media_pb2_grpc.MediaServicer):
    def __init__(self, create: CreateHelper) -> None:
        self._create = create

    async def CreateVideoTask(
        self, request: media_pb2.CreateVideoTaskRequest, context: grpc.aio.ServicerContext
    ) -> tasks_pb2.Task:
        return await self._create.create("video", request, context)

    async def CreateImageTask(
        self, request: media_pb2.CreateImageTaskRequest, context: grpc.aio.ServicerContext
    ) -> tasks_pb2.Task:
        return await self._create.create("image", request, context)

    async def CreateAudioTask(
        self, request: media_pb2.CreateAudioTaskRequest, context: grpc.aio.ServicerContext
    ) -> tasks_pb2.Task:
        return await self._create.create("audio", request, context)

    async def CreateAdaptiveVideoTask(
        self, request: media_pb2.CreateAdaptiveVideoTaskRequest, context: grpc.aio.ServicerContext
    ) -> tasks_pb2.Task:
        return await self._create.create("adaptive_video", request, context)
