"""A kind whose service is not deployed answers 501 ``kind_unavailable``, never a 5xx crash: the
family is not configured (no address), or its service does not run that kind yet."""

from __future__ import annotations

import json

import pytest
from transmute.tracks.v1 import tracks_pb2_grpc

from gateway.core import from_domain
from taskkit.api import servicer_for
from taskkit.config import Settings
from taskkit.errors import Unimplemented
from taskkit.rpc import Clients


async def test_a_family_without_an_address_is_kind_unavailable() -> None:
    clients = Clients.from_settings(Settings(media_addr="127.0.0.1:9", tracks_addr=None))
    try:
        with pytest.raises(Unimplemented, match="'thumbnails' kind is not available"):
            clients.family("tracks", "thumbnails")
        with pytest.raises(Unimplemented, match="tracks service is not configured"):
            clients.channel("tracks")
        assert clients.family("media", "video") is not None
    finally:
        await clients.close()


async def test_a_kind_the_service_does_not_run_is_kind_unavailable() -> None:
    servicer = servicer_for(tracks_pb2_grpc.TracksServicer, ["subtitles"])(None)  # type: ignore[arg-type]
    with pytest.raises(Unimplemented, match="'thumbnails' kind is not available") as raised:
        await servicer.CreateThumbnailsTask(None, None)  # type: ignore[attr-defined]
    response = from_domain(raised.value)
    assert response.status_code == 501
    assert json.loads(bytes(response.body))["kind"] == "kind_unavailable"
