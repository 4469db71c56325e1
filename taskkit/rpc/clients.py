"""gRPC clients of the family services, one channel per configured address, for the gateway and for
a family calling another (tracks → intelligence).

Every call carries the caller's project as ``transmute-project`` metadata (``project_metadata(project)``).
Task reads and control (get, list, cancel, watch) go to the media service: every family server
serves the shared Tasks API over the same records, and media is always deployed.

Channels are plaintext unless a ``TRANSMUTE_GRPC_CLIENT_*`` setting is set; then they are TLS,
verifying the server against ``TRANSMUTE_GRPC_CLIENT_CA`` (the system roots without it) and
presenting ``TRANSMUTE_GRPC_CLIENT_CERT``/``_KEY`` to servers that require a client certificate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from transmute.tasks.v1 import tasks_pb2_grpc

from taskkit.config import Settings
from taskkit.errors import Unimplemented
from taskkit.rpc.kinds import FAMILY_SERVICES


def channel_credentials(settings: Settings) -> grpc.ChannelCredentials | None:
    """TLS credentials from the ``TRANSMUTE_GRPC_CLIENT_*`` settings; None (plaintext) without any."""
    cert, key, ca = settings.grpc_client_cert, settings.grpc_client_key, settings.grpc_client_ca
    if not (cert or key or ca):
        return None
    if bool(cert) != bool(key):
        raise ValueError("TRANSMUTE_GRPC_CLIENT_CERT and TRANSMUTE_GRPC_CLIENT_KEY are set together")
    return grpc.ssl_channel_credentials(
        root_certificates=Path(ca).read_bytes() if ca else None,
        private_key=Path(key).read_bytes() if key else None,
        certificate_chain=Path(cert).read_bytes() if cert else None,
    )


def open_channel(address: str, credentials: grpc.ChannelCredentials | None) -> grpc.aio.Channel:
    """A channel to ``address``: TLS with ``credentials``, plaintext without."""
    if credentials is None:
        return grpc.aio.insecure_channel(address)
    return grpc.aio.secure_channel(address, credentials)


@dataclass
class Clients:
    tasks: tasks_pb2_grpc.TasksStub
    families: dict[str, Any]
    channels: dict[str, grpc.aio.Channel] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> Clients:
        addresses = {
            "media": settings.media_addr,
            "tracks": settings.tracks_addr,
            "intelligence": settings.intelligence_addr,
        }
        credentials = channel_credentials(settings)
        channels: dict[str, grpc.aio.Channel] = {}
        for family, address in addresses.items():
            if address:
                channels[family] = open_channel(address, credentials)
        return cls(
            tasks=tasks_pb2_grpc.TasksStub(channels["media"]),
            families={name: FAMILY_SERVICES[name].stub(channel) for name, channel in channels.items()},
            channels=channels,
        )

    def family(self, name: str, kind: str) -> Any:
        stub = self.families.get(name)
        if stub is None:
            raise Unimplemented(f"The '{kind}' kind is not available on this deployment yet.")
        return stub

    def channel(self, family: str) -> grpc.aio.Channel:
        """The channel to ``family``, e.g. for its Tasks API (a parent following its child)."""
        channel = self.channels.get(family)
        if channel is None:
            raise Unimplemented(f"The {family} service is not configured on this deployment.")
        return channel

    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.close()
