"""The intelligence family: its gRPC service, its kinds and the models its workers load once."""

from __future__ import annotations

from transmute.intelligence.v1 import intelligence_pb2, intelligence_pb2_grpc

from intelligence_service import nsfw, outline, speech, summary
from intelligence_service.nsfw_model import open_nsfw
from intelligence_service.options import (
    parse_nsfw_options,
    parse_outline_options,
    parse_speech_options,
    parse_summary_options,
)
from intelligence_service.whisper_model import open_whisper
from taskkit.api import servicer_for
from taskkit.runtime import Family, Kind

KINDS = (
    Kind("speech", parse_speech_options, speech.handle, resources=("whisper",)),
    Kind("nsfw", parse_nsfw_options, nsfw.handle, timeout_seconds=1_800.0, resources=("nsfw",)),
    Kind("summary", parse_summary_options, summary.handle, resources=("whisper",)),
    Kind("outline", parse_outline_options, outline.handle, resources=("whisper",)),
)

FAMILY = Family(
    name="intelligence",
    service_name=intelligence_pb2.DESCRIPTOR.services_by_name["Intelligence"].full_name,
    servicer=servicer_for(intelligence_pb2_grpc.IntelligenceServicer, (kind.name for kind in KINDS)),
    add_servicer=intelligence_pb2_grpc.add_IntelligenceServicer_to_server,
    kinds=KINDS,
    resources={"whisper": open_whisper, "nsfw": open_nsfw},
)
