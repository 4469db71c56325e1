"""Every kind, read from the protos: which family serves it, its Create RPC, and its request and
options messages.

The protos are the one place a kind is spelt: a family's service declares ``Create<Kind>Task``
(request ``{spec, options}``), and everything here is derived from the generated descriptors, so
the gateway's routing, the API version shapes and the error messages that list kinds need no
edit when a kind is added (docs/architecture.md, "How to add a kind"). A family names its
service here once (``FAMILY_SERVICES``), beside its stub.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import Message
from transmute.intelligence.v1 import intelligence_pb2, intelligence_pb2_grpc
from transmute.media.v1 import media_pb2, media_pb2_grpc
from transmute.tracks.v1 import tracks_pb2, tracks_pb2_grpc

_CREATE_RPC = re.compile(r"Create(?P<kind>[A-Za-z0-9]+)Task")


@dataclass(frozen=True)
class FamilyService:
    descriptor: ServiceDescriptor
    stub: Any  # the generated <Service>Stub class


FAMILY_SERVICES: dict[str, FamilyService] = {
    "media": FamilyService(media_pb2.DESCRIPTOR.services_by_name["Media"], media_pb2_grpc.MediaStub),
    "tracks": FamilyService(tracks_pb2.DESCRIPTOR.services_by_name["Tracks"], tracks_pb2_grpc.TracksStub),
    "intelligence": FamilyService(
        intelligence_pb2.DESCRIPTOR.services_by_name["Intelligence"], intelligence_pb2_grpc.IntelligenceStub
    ),
}


@dataclass(frozen=True)
class KindRoute:
    family: str  # media | tracks | intelligence
    rpc: str  # method name on the family stub
    request: type[Message]
    options: type[Message]


def rpc_name(kind: str) -> str:
    """The Create RPC of a kind: ``adaptive_video`` → ``CreateAdaptiveVideoTask``."""
    return "Create" + "".join(part.title() for part in kind.split("_")) + "Task"


def kind_of_rpc(name: str) -> str | None:
    """The kind a Create RPC creates (``CreateAdaptiveVideoTask`` → ``adaptive_video``); None for
    any other method."""
    match = _CREATE_RPC.fullmatch(name)
    return re.sub(r"(?<!^)(?=[A-Z])", "_", match["kind"]).lower() if match else None


def _routes() -> Iterator[tuple[str, KindRoute]]:
    for family, service in FAMILY_SERVICES.items():
        for method in service.descriptor.methods:
            kind = kind_of_rpc(method.name)
            if kind is None:
                continue
            options = method.input_type.fields_by_name["options"].message_type
            yield (
                kind,
                KindRoute(
                    family=family,
                    rpc=method.name,
                    request=message_factory.GetMessageClass(method.input_type),
                    options=message_factory.GetMessageClass(options),
                ),
            )


KINDS: dict[str, KindRoute] = dict(_routes())  # in the protos' order: media, tracks, intelligence


def kinds_of(family: str) -> frozenset[str]:
    """The kinds ``family``'s proto declares."""
    return frozenset(kind for kind, route in KINDS.items() if route.family == family)
