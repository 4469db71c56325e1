"""gRPC clients of the family services, one channel per configured address, for the gateway and for
a family calling another (tracks → intelligence).

Every call carries the caller's project as ``transmute-project`` metadata (``metadata(project)``).
Task reads and control (get, list, cancel, watch) go to the media service: every family server
serves the shared Tasks API over the same records, and media is always deployed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import grpc
from transmute.intelligence.v1 import intelligence_pb2_grpc
from transmute.media.v1 import media_pb2_grpc
from transmute.tasks.v1 import tasks_pb2_grpc
from transmute.tracks.v1 import tracks_pb2_grpc

from taskkit.config import Settings
from taskkit.errors import Unimplemented
from taskkit.project import PROJECT_KEY

_STUBS = {
    "media": media_pb2_grpc.MediaStub,
    "tracks": tracks_pb2_grpc.TracksStub,
    "intelligence": intelligence_pb2_grpc.IntelligenceStub,
}


def metadata(project: str) -> tuple[tuple[str, str], ...]:
    return ((PROJECT_KEY, project),)


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
        channels: dict[str, grpc.aio.Channel] = {}
        for family, address in addresses.items():
            if address:
                channels[family] = grpc.aio.insecure_channel(address)
        return cls(
            tasks=tasks_pb2_grpc.TasksStub(channels["media"]),
            families={name: _STUBS[name](channel) for name, channel in channels.items()},
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
