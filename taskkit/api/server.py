"""Every Transmute gRPC server is built here the same way: the family servicer, the shared Tasks
servicer, health, reflection and the error interceptor (grpc/grpc examples' create_server shape),
on a plaintext or a TLS port (``server_credentials``: mutual TLS when a client CA is set; health
and reflection are served on the same port, so probes need the same certificates)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from taskkit.config import Settings
from taskkit.rpc.errors import ErrorInterceptor

Register = Callable[[grpc.aio.Server], None]


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """TLS credentials from ``TRANSMUTE_GRPC_TLS_CERT``/``_KEY`` (None without them: plaintext);
    with ``TRANSMUTE_GRPC_TLS_CA`` every client must present a certificate that CA signed."""
    cert, key, ca = settings.grpc_tls_cert, settings.grpc_tls_key, settings.grpc_tls_ca
    if not (cert or key or ca):
        return None
    if not (cert and key):
        raise ValueError("TRANSMUTE_GRPC_TLS_CERT and _KEY are set together (and _CA needs both)")
    return grpc.ssl_server_credentials(
        [(Path(key).read_bytes(), Path(cert).read_bytes())],
        root_certificates=Path(ca).read_bytes() if ca else None,
        require_client_auth=bool(ca),
    )


def create_server(
    *,
    address: str,
    register: Register,
    service_names: list[str],
    credentials: grpc.ServerCredentials | None = None,
) -> tuple[grpc.aio.Server, int, health.aio.HealthServicer]:
    """Build (not start) a server bound to ``address`` (port 0 picks a free one), over TLS when
    ``credentials`` are given.

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
    port = server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
    return server, port, health_servicer


async def set_serving(health_servicer: health.aio.HealthServicer, names: list[str], serving: bool) -> None:
    state = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
    for name in ["", *names]:
        await health_servicer.set(name, state)
