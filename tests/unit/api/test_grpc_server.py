"""The media gRPC server in-process on port 0: health, reflection, errors as status codes + kind."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from transmute.media.v1 import media_pb2, media_pb2_grpc
from transmute.tasks.v1 import tasks_pb2, tasks_pb2_grpc

from media_service.family import FAMILY
from taskkit.api import CreateHelper, TasksServicer, create_server, set_serving
from taskkit.config import Settings
from taskkit.records import TaskCreator, TaskStore
from taskkit.rpc import ERROR_KIND_KEY
from taskkit.rpc.metadata import PROJECT_KEY
from taskkit.storage import signing
from tests.support.nats_server import running_bus

NAMES = ["transmute.media.v1.Media", "transmute.tasks.v1.Tasks"]
META = ((PROJECT_KEY, "p"),)


@pytest.fixture
async def channel(tmp_path: Path) -> AsyncIterator[grpc.aio.Channel]:
    async with running_bus(tmp_path) as bus:
        store = TaskStore(bus)
        settings = Settings(signing_secret="s")

        def register(server: grpc.aio.Server) -> None:
            creator = TaskCreator(bus=bus, store=store, family="media")
            helper = CreateHelper(creator, FAMILY.kinds, settings)
            media_pb2_grpc.add_MediaServicer_to_server(FAMILY.servicer(helper), server)
            tasks_pb2_grpc.add_TasksServicer_to_server(
                TasksServicer(bus=bus, store=store, settings=settings), server
            )

        server, port, health = create_server(address="127.0.0.1:0", register=register, service_names=NAMES)
        await server.start()
        await set_serving(health, NAMES, True)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as chan:
            yield chan
        await server.stop(1)


async def test_health_and_reflection(channel: grpc.aio.Channel) -> None:
    reply = await health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service="transmute.media.v1.Media"), timeout=5
    )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    stream = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
    )
    listed = [s.name async for r in stream for s in r.list_services_response.service]
    assert set(NAMES) <= set(listed)


async def test_create_get_and_cancel(channel: grpc.aio.Channel) -> None:
    media = media_pb2_grpc.MediaStub(channel)
    request = media_pb2.CreateVideoTaskRequest(
        spec=tasks_pb2.TaskSpec(url="https://example.com/a.mp4"),
        options=media_pb2.VideoOptions(format="webm"),
    )
    task = await media.CreateVideoTask(request, metadata=META, timeout=5)
    assert task.status == tasks_pb2.TASK_STATUS_WAITING and task.id.startswith("task_")
    tasks = tasks_pb2_grpc.TasksStub(channel)
    got = await tasks.GetTask(tasks_pb2.GetTaskRequest(id=task.id), metadata=META, timeout=5)
    assert got.options["codec"] == "vp9"  # default codec resolved for webm
    cancelled = await tasks.CancelTask(tasks_pb2.CancelTaskRequest(id=task.id), metadata=META, timeout=5)
    assert cancelled.status == tasks_pb2.TASK_STATUS_CANCELLED
    with pytest.raises(grpc.aio.AioRpcError) as again:
        await tasks.CancelTask(tasks_pb2.CancelTaskRequest(id=task.id), metadata=META, timeout=5)
    assert again.value.code() == grpc.StatusCode.ABORTED


@pytest.mark.parametrize(
    ("options", "code", "kind", "text"),
    [
        (media_pb2.VideoOptions(format="bmp"), grpc.StatusCode.INVALID_ARGUMENT, "request_invalid", "format"),
        (
            media_pb2.VideoOptions(format="webm", codec="h264"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "request_invalid",
            "h264",
        ),
    ],
)
async def test_domain_errors_map_to_codes_with_kind(
    channel: grpc.aio.Channel, options: media_pb2.VideoOptions, code: grpc.StatusCode, kind: str, text: str
) -> None:
    media = media_pb2_grpc.MediaStub(channel)
    request = media_pb2.CreateVideoTaskRequest(
        spec=tasks_pb2.TaskSpec(url="https://example.com/a.mp4"), options=options
    )
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await media.CreateVideoTask(request, metadata=META, timeout=5)
    assert error.value.code() == code
    assert text in (error.value.details() or "")
    assert (ERROR_KIND_KEY, kind) in tuple(error.value.trailing_metadata() or ())


async def test_missing_project_and_unknown_task(channel: grpc.aio.Channel) -> None:
    tasks = tasks_pb2_grpc.TasksStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as no_project:
        await tasks.GetTask(tasks_pb2.GetTaskRequest(id="task_x"), timeout=5)
    assert no_project.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await tasks.GetTask(tasks_pb2.GetTaskRequest(id="task_0000000000000000"), metadata=META, timeout=5)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert (ERROR_KIND_KEY, "task_not_found") in tuple(missing.value.trailing_metadata() or ())


def _nested(depth: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def _spec(**fields: object) -> tasks_pb2.TaskSpec:
    metadata = fields.pop("metadata", None)
    spec = tasks_pb2.TaskSpec(url=str(fields.pop("url", "https://example.com/a.mp4")), **fields)  # type: ignore[arg-type]
    if metadata is not None:
        spec.metadata.update(metadata)
    return spec


@pytest.mark.parametrize(
    ("spec", "options", "text"),
    [
        (
            _spec(metadata={"a": float("inf")}),
            media_pb2.VideoOptions(),
            "'metadata.a' must be a finite number",
        ),
        (_spec(metadata={"a": [1, float("nan")]}), media_pb2.VideoOptions(), "'metadata.a[1]'"),
        (_spec(), media_pb2.VideoOptions(start=float("inf")), "start"),
        (_spec(), media_pb2.VideoOptions(fps=float("nan")), "fps"),
        (_spec(metadata=_nested(6)), media_pb2.VideoOptions(), "nested deeper than 5"),
        (_spec(metadata={"a": "x" * 20_000}), media_pb2.VideoOptions(), "over the limit of 16384 bytes"),
        (_spec(filename="a" * 300), media_pb2.VideoOptions(), "'filename' is 300 characters"),
        (_spec(folder="f" * 5000), media_pb2.VideoOptions(), "'folder' is 5000 characters"),
        (_spec(url="http://10.0.0.5/a.mp4"), media_pb2.VideoOptions(), "10.0.0.5 is private"),
        (_spec(url="http://[::1]:8080/a.mp4"), media_pb2.VideoOptions(), "::1 is loopback"),
        (_spec(url="http://169.254.169.254/latest"), media_pb2.VideoOptions(), "link-local"),
        (_spec(url="http://LOCALHOST./a.mp4"), media_pb2.VideoOptions(), "loopback host"),
    ],
)
async def test_hostile_creates_through_grpc_are_refused_and_store_nothing(
    channel: grpc.aio.Channel, spec: tasks_pb2.TaskSpec, options: media_pb2.VideoOptions, text: str
) -> None:
    """The service's own checks, for callers that skip the gateway: every value a reader could not
    render, or a worker could only fail on, is INVALID_ARGUMENT and nothing is written."""
    media = media_pb2_grpc.MediaStub(channel)
    request = media_pb2.CreateVideoTaskRequest(spec=spec, options=options)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await media.CreateVideoTask(request, metadata=META, timeout=5)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert text in (error.value.details() or "")
    listed = await tasks_pb2_grpc.TasksStub(channel).ListTasks(
        tasks_pb2.ListTasksRequest(), metadata=META, timeout=5
    )
    assert list(listed.tasks) == []


async def test_metadata_at_the_limits_is_accepted(channel: grpc.aio.Channel) -> None:
    media = media_pb2_grpc.MediaStub(channel)
    spec = _spec(metadata={"deep": _nested(4), "text": "x" * 1000}, filename="n" * 200, folder="d" * 200)
    task = await media.CreateVideoTask(media_pb2.CreateVideoTaskRequest(spec=spec), metadata=META, timeout=5)
    assert task.metadata["text"] == "x" * 1000


async def test_a_link_this_deployment_signed_is_not_a_private_address(channel: grpc.aio.Channel) -> None:
    """Our own links (``public_url`` may well be localhost) are read from storage, not fetched."""
    link = signing.signed_url("http://localhost:8080", "s", "p/uploads/a.mp4", ttl=600)
    media = media_pb2_grpc.MediaStub(channel)
    request = media_pb2.CreateVideoTaskRequest(spec=_spec(url=link))
    task = await media.CreateVideoTask(request, metadata=META, timeout=5)
    assert task.url == link
