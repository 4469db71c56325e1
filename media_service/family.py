"""The media family: its gRPC service and its kinds, declared once for the runtime."""

from __future__ import annotations

from transmute.media.v1 import media_pb2, media_pb2_grpc

from media_service import adaptive, handlers
from media_service.options import (
    parse_adaptive_options,
    parse_audio_options,
    parse_image_options,
    parse_video_options,
)
from taskkit.api import servicer_for
from taskkit.runtime import Family, Kind

KINDS = (
    Kind("video", parse_video_options, handlers.video),
    Kind("image", parse_image_options, handlers.image, timeout_seconds=600.0),
    Kind("audio", parse_audio_options, handlers.audio),
    Kind("adaptive_video", parse_adaptive_options, adaptive.handle, timeout_seconds=4 * 3600.0),
)

FAMILY = Family(
    name="media",
    service_name=media_pb2.DESCRIPTOR.services_by_name["Media"].full_name,
    servicer=servicer_for(media_pb2_grpc.MediaServicer, (kind.name for kind in KINDS)),
    add_servicer=media_pb2_grpc.add_MediaServicer_to_server,
    kinds=KINDS,
)
