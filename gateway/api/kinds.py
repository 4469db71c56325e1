"""Which family serves each kind, and with which RPC and typed messages."""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import Message
from transmute.intelligence.v1 import intelligence_pb2
from transmute.media.v1 import media_pb2
from transmute.tracks.v1 import tracks_pb2


@dataclass(frozen=True)
class KindRoute:
    family: str  # media | tracks | intelligence
    rpc: str  # method name on the family stub
    request: type[Message]
    options: type[Message]


KINDS: dict[str, KindRoute] = {
    "video": KindRoute("media", "CreateVideoTask", media_pb2.CreateVideoTaskRequest, media_pb2.VideoOptions),
    "image": KindRoute("media", "CreateImageTask", media_pb2.CreateImageTaskRequest, media_pb2.ImageOptions),
    "audio": KindRoute("media", "CreateAudioTask", media_pb2.CreateAudioTaskRequest, media_pb2.AudioOptions),
    "adaptive_video": KindRoute(
        "media",
        "CreateAdaptiveVideoTask",
        media_pb2.CreateAdaptiveVideoTaskRequest,
        media_pb2.AdaptiveVideoOptions,
    ),
    "subtitles": KindRoute(
        "tracks", "CreateSubtitlesTask", tracks_pb2.CreateSubtitlesTaskRequest, tracks_pb2.SubtitlesOptions
    ),
    "chapters": KindRoute(
        "tracks", "CreateChaptersTask", tracks_pb2.CreateChaptersTaskRequest, tracks_pb2.ChaptersOptions
    ),
    "thumbnails": KindRoute(
        "tracks", "CreateThumbnailsTask", tracks_pb2.CreateThumbnailsTaskRequest, tracks_pb2.ThumbnailsOptions
    ),
    "speech": KindRoute(
        "intelligence",
        "CreateSpeechTask",
        intelligence_pb2.CreateSpeechTaskRequest,
        intelligence_pb2.SpeechOptions,
    ),
    "nsfw": KindRoute(
        "intelligence", "CreateNsfwTask", intelligence_pb2.CreateNsfwTaskRequest, intelligence_pb2.NsfwOptions
    ),
    "summary": KindRoute(
        "intelligence",
        "CreateSummaryTask",
        intelligence_pb2.CreateSummaryTaskRequest,
        intelligence_pb2.SummaryOptions,
    ),
    "outline": KindRoute(
        "intelligence",
        "CreateOutlineTask",
        intelligence_pb2.CreateOutlineTaskRequest,
        intelligence_pb2.OutlineOptions,
    ),
}
