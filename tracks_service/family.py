"""The tracks family: subtitles, chapters and thumbnails. Subtitles and chapters are built on
child tasks of the intelligence service, reached through its public gRPC API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from transmute.tracks.v1 import tracks_pb2, tracks_pb2_grpc

from taskkit.api import servicer_for
from taskkit.config import Settings
from taskkit.rpc import Clients
from taskkit.runtime import Family, Kind
from tracks_service import chapters, subtitles, thumbnails
from tracks_service.options import (
    parse_chapters_options,
    parse_subtitles_options,
    parse_thumbnails_options,
)


@asynccontextmanager
async def open_clients(settings: Settings) -> AsyncIterator[Clients]:
    """gRPC channels to the other families (``TRANSMUTE_INTELLIGENCE_ADDR``), one per process."""
    clients = Clients.from_settings(settings)
    try:
        yield clients
    finally:
        await clients.close()


KINDS = (
    Kind("subtitles", parse_subtitles_options, subtitles.handle, resources=("clients",)),
    Kind("chapters", parse_chapters_options, chapters.handle, resources=("clients",)),
    Kind("thumbnails", parse_thumbnails_options, thumbnails.handle),
)

FAMILY = Family(
    name="tracks",
    service_name=tracks_pb2.DESCRIPTOR.services_by_name["Tracks"].full_name,
    servicer=servicer_for(tracks_pb2_grpc.TracksServicer, (kind.name for kind in KINDS)),
    add_servicer=tracks_pb2_grpc.add_TracksServicer_to_server,
    kinds=KINDS,
    resources={"clients": open_clients},
)
