"""Every Transmute gRPC server is built here the same way: the family servicer, the shared Tasks
servicer, health, reflection and the error interceptor (grpc/grpc examples' create_server shape)."""

from __future__ import annotations

from collections.abc import Callable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from taskkit.grpc_errors import ErrorInterceptor

Register = Callable[[grpc.aio.Server], None]


def create_server(
    *, address: str, register: Register, service_names: list[str]
) -> tuple[grpc.aio.Server, int, health.aio.HealthServicer]:
    """Build (not start) a server bound to ``address`` (port 0 picks a free one).

    Returns the server, the bound port and the health servicer, whose status the caller flips
    to SERVING after start and NOT_SERVING at shutdown.
    """
    server = grpc.aio.server(interceptors=[ErrorInterceptor()])
    register(server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [*service_names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME],
        server,
    )
    port = server.add_insecure_port(address)
    return server, port, health_servicer


async def set_serving(health_servicer: health.aio.HealthServicer, names: list[str], serving: bool) -> None:
    state = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
    for name in ["", *names]:
        await health_servicer.set(name, state)
