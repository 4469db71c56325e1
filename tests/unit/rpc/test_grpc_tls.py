"""Mutual TLS on the gRPC ports: a real server on port 0 built by ``create_server`` from the
``TRANSMUTE_GRPC_TLS_*`` settings, and channels built by ``Clients`` from ``TRANSMUTE_GRPC_CLIENT_*``,
with certificates made in the test. Only a client holding a certificate of the server's CA gets an
answer; the health service sits behind the same check."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from taskkit.api import create_server, server_credentials, set_serving
from taskkit.config import Settings
from taskkit.rpc import Clients
from taskkit.rpc.clients import channel_credentials
from tests.support.certs import Certs, make_certs

NAMES = ["transmute.media.v1.Media"]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """Certificates of another CA: valid, but not the deployment's."""
    return make_certs(tmp_path_factory.mktemp("other-pki"), name="stranger")


def server_settings(certs: Certs, *, require_client: bool = True) -> Settings:
    return Settings(
        grpc_tls_cert=str(certs.server_cert),
        grpc_tls_key=str(certs.server_key),
        grpc_tls_ca=str(certs.ca) if require_client else "",
    )


async def serve(settings: Settings) -> AsyncIterator[int]:
    server, port, health = create_server(
        address="127.0.0.1:0",
        register=lambda _: None,
        service_names=NAMES,
        credentials=server_credentials(settings),
    )
    await server.start()
    await set_serving(health, NAMES, True)
    try:
        yield port
    finally:
        await server.stop(0)


@pytest.fixture
async def mtls_port(certs: Certs) -> AsyncIterator[int]:
    async for port in serve(server_settings(certs)):
        yield port


async def check(channel: grpc.aio.Channel) -> int:
    reply = await health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=NAMES[0]), timeout=5
    )
    return int(reply.status)


async def check_with(port: int, *, cert: Path | None, key: Path | None, ca: Path) -> int:
    """Health through the channel ``Clients`` builds from these client settings."""
    settings = Settings(
        media_addr=f"127.0.0.1:{port}",
        grpc_client_cert=str(cert or ""),
        grpc_client_key=str(key or ""),
        grpc_client_ca=str(ca),
    )
    clients = Clients.from_settings(settings)
    try:
        return await check(clients.channel("media"))
    finally:
        await clients.close()


async def test_client_with_the_ca_s_certificate_gets_an_answer(mtls_port: int, certs: Certs) -> None:
    status = await check_with(mtls_port, cert=certs.client_cert, key=certs.client_key, ca=certs.ca)
    assert status == health_pb2.HealthCheckResponse.SERVING


async def test_client_without_a_certificate_is_refused(mtls_port: int, certs: Certs) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await check_with(mtls_port, cert=None, key=None, ca=certs.ca)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_client_certificate_of_another_ca_is_refused(
    mtls_port: int, certs: Certs, stranger: Certs
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await check_with(mtls_port, cert=stranger.client_cert, key=stranger.client_key, ca=certs.ca)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_server_of_another_ca_is_not_trusted(mtls_port: int, certs: Certs, stranger: Certs) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await check_with(mtls_port, cert=certs.client_cert, key=certs.client_key, ca=stranger.ca)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_plaintext_client_is_refused(mtls_port: int) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{mtls_port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await check(channel)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_server_without_a_client_ca_serves_tls_to_any_client(certs: Certs) -> None:
    async for port in serve(server_settings(certs, require_client=False)):
        status = await check_with(port, cert=None, key=None, ca=certs.ca)
        assert status == health_pb2.HealthCheckResponse.SERVING


def test_empty_settings_mean_plaintext() -> None:
    settings = Settings()
    assert server_credentials(settings) is None
    assert channel_credentials(settings) is None


def test_half_a_key_pair_is_a_start_up_error(certs: Certs) -> None:
    with pytest.raises(ValueError, match="_KEY"):
        server_credentials(Settings(grpc_tls_cert=str(certs.server_cert)))
    with pytest.raises(ValueError, match="_KEY"):
        server_credentials(Settings(grpc_tls_ca=str(certs.ca)))
    with pytest.raises(ValueError, match="_KEY"):
        channel_credentials(Settings(grpc_client_cert=str(certs.client_cert), grpc_client_ca=str(certs.ca)))
