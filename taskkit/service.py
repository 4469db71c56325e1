"""Running a family service: one process, roles ``api`` (gRPC), ``worker`` or ``all``.

Start-up: the gRPC server starts NOT_SERVING (with the create path's sweeper beside it in
``api``/``all``, ``taskkit.records.outbox``); the worker's per-process resources (models, clients)
are opened; only then does health say SERVING and the worker start pulling (kserve's rule: a model
is loaded before the server says it is ready).

Shutdown on SIGTERM/SIGINT: health goes NOT_SERVING, the gRPC server stops accepting and gets
``shutdown_grace_seconds`` for in-flight calls, the worker stops pulling and lets running tasks
finish within the same grace (the rest are released for redelivery), resources are closed, then
NATS is drained.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass
from typing import Any

import grpc
from transmute.tasks.v1 import tasks_pb2, tasks_pb2_grpc

from taskkit import logs
from taskkit.api.create_servicer import CreateHelper
from taskkit.api.server import create_server, server_credentials, set_serving
from taskkit.api.tasks_servicer import TasksServicer
from taskkit.config import Settings, get_settings
from taskkit.records.creator import TaskCreator
from taskkit.records.jetstream import Bus, connect
from taskkit.records.outbox import Sweeper
from taskkit.records.store import TaskStore
from taskkit.runtime.family import Family
from taskkit.runtime.worker import Worker
from taskkit.storage.backends import open_storage
from taskkit.storage.base import Storage

log = logging.getLogger(__name__)

ROLES = ("api", "worker", "all")


@dataclass
class Runtime:
    settings: Settings
    bus: Bus
    store: TaskStore
    storage: Storage


async def open_runtime(settings: Settings, *, client_name: str) -> Runtime:
    bus = await connect(
        settings.nats_url,
        name=client_name,
        replicas=settings.nats_replicas,
        repair_index=settings.role in ("api", "all"),  # the roles that serve listings
    )
    return Runtime(settings=settings, bus=bus, store=TaskStore(bus), storage=open_storage(settings))


async def serve(family: Family, settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    """Run the family in the configured role until ``stop`` is set or a signal arrives."""
    if settings.role not in ROLES:
        raise SystemExit(f"--role must be one of {', '.join(ROLES)} (got {settings.role!r})")
    kinds = family.selected(settings)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    runtime = await open_runtime(settings, client_name=f"{family.name}-{settings.role}")
    jobs: list[asyncio.Task[None]] = []
    server = health = None
    names = [family.service_name, tasks_pb2.DESCRIPTOR.services_by_name["Tasks"].full_name]
    resources = contextlib.AsyncExitStack()
    try:
        if settings.role in ("api", "all"):
            creator = TaskCreator(bus=runtime.bus, store=runtime.store, family=family.name)

            def register(srv: grpc.aio.Server) -> None:
                family.add_servicer(family.servicer(CreateHelper(creator, family.kinds, settings)), srv)
                tasks_pb2_grpc.add_TasksServicer_to_server(
                    TasksServicer(bus=runtime.bus, store=runtime.store, settings=settings), srv
                )

            server, port, health = create_server(
                address=f"{settings.grpc_host}:{settings.grpc_port}",
                register=register,
                service_names=names,
                credentials=server_credentials(settings),
            )
            await server.start()
            await set_serving(health, names, False)
            log.info("grpc started", extra={"family": family.name, "port": port})
            sweeper = Sweeper(
                bus=runtime.bus,
                store=runtime.store,
                family=family.name,
                after_s=settings.sweep_after_seconds,
                interval_s=settings.sweep_interval_seconds,
            )
            jobs.append(asyncio.create_task(sweeper.run(stop)))
        opened: dict[str, Any] = {}
        if settings.role in ("worker", "all"):
            await resources.enter_async_context(runtime.storage)  # the backend's clients, once per process
            for name, factory in family.resources_for(kinds).items():
                opened[name] = await resources.enter_async_context(factory(settings))
                log.info("resource opened", extra={"family": family.name, "resource": name})
        if health is not None:
            await set_serving(health, names, True)
            log.info("grpc serving", extra={"family": family.name})
        if settings.role in ("worker", "all"):
            worker = Worker(
                bus=runtime.bus,
                store=runtime.store,
                storage=runtime.storage,
                settings=settings,
                family=family.name,
                kinds=kinds,
                resources=opened,
            )
            job = asyncio.create_task(worker.run(stop))
            job.add_done_callback(lambda done: _stop_if_crashed(done, stop))
            jobs.append(job)
        await stop.wait()
        log.info("shutting down", extra={"family": family.name})
    finally:
        stop.set()
        if server is not None and health is not None:
            await set_serving(health, names, False)
            await server.stop(settings.shutdown_grace_seconds)
        await asyncio.gather(*jobs, return_exceptions=True)
        await resources.aclose()
        await runtime.bus.close()


def _stop_if_crashed(job: asyncio.Task[None], stop: asyncio.Event) -> None:
    """A worker loop must only end on shutdown; if it crashed, stop the process loudly so the
    supervisor restarts it instead of leaving a process that serves gRPC but does no work."""
    if not job.cancelled() and job.exception() is not None and not stop.is_set():
        log.error("worker loop crashed; shutting down", exc_info=job.exception())
        stop.set()


def main(family: Family, argv: list[str] | None = None) -> None:
    """``python -m <family>_service [--role api|worker|all] [--port N] [--kinds a,b]``."""
    parser = argparse.ArgumentParser(
        prog=f"{family.name}_service", description=f"The {family.name} family service."
    )
    parser.add_argument("--role", choices=ROLES, help="overrides TRANSMUTE_ROLE (default all)")
    parser.add_argument("--port", type=int, help="overrides TRANSMUTE_GRPC_PORT")
    parser.add_argument("--kinds", help="overrides TRANSMUTE_KINDS: the kinds this worker runs")
    args = parser.parse_args(argv)
    settings = get_settings()
    if args.role:
        settings.role = args.role
    if args.port is not None:
        settings.grpc_port = args.port
    if args.kinds is not None:
        settings.kinds = args.kinds
    logs.setup(settings.log_level)
    asyncio.run(serve(family, settings))
