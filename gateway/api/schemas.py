"""Pydantic models of the HTTP API's bodies: they parse requests, build the OpenAPI document and
render the responses of the routes that return them. The task routes render their bodies by hand
(the shape depends on the API version) and document ``TaskOut``; tests/unit/gateway/test_openapi.py
checks that what they send is what the document says."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class HealthOut(BaseModel):
    status: Literal["ok"]


class ErrorBody(BaseModel):
    kind: str = Field(examples=["request_invalid"])
    message: str = Field(examples=['options.format must be one of mp4, webm, mov (got "avi").'])


class TaskCreate(BaseModel):
    """``{url, kind, options}``; the older flat shape (options at the top level) is accepted too."""

    model_config = ConfigDict(extra="allow")

    kind: str = Field(examples=["video"])
    url: str | None = Field(None, examples=["https://example.com/input.mp4"])
    options: dict[str, Any] | None = Field(None, examples=[{"format": "webm", "width": 640}])
    filename: str | None = None
    folder: str | None = None
    ref: str | None = None
    webhook_url: str | None = None
    metadata: dict[str, Any] | None = None


class RenditionOut(BaseModel):
    """One rendition of a package output (``adaptive_video``): a video rung, the audio or subtitles."""

    type: Literal["video", "audio", "subtitles"]
    width: int | None = None
    height: int | None = None
    bitrate: int | None = Field(default=None, description="average bits/s measured on the segments")
    codec: str | None = Field(default=None, examples=["avc1.64001f"])
    language: str | None = None
    label: str | None = None


class FileEntryOut(BaseModel):
    kind: str = Field(examples=["source"])
    type: str = Field(examples=["video/mp4"])
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    filesize: int | None = None
    codec: str | None = None
    audio_codec: str | None = None
    fps: float | None = None
    channels: int | None = None
    language: str | None = None
    label: str | None = None
    url: str | None = None
    renditions: list[RenditionOut] | None = None


TaskStatusName = Literal[
    "waiting", "queued", "validating", "processing", "finishing", "succeeded", "failed", "cancelled"
]


class TaskOut(BaseModel):
    id: str = Field(examples=["task_0mhq2c7xk3v9a1bz"])
    object: Literal["task"] = "task"
    kind: str
    status: TaskStatusName
    run_id: str
    parent_id: str | None
    progress: int | None
    url: str
    options: dict[str, Any]
    inputs: list[FileEntryOut]
    outputs: list[FileEntryOut]
    metadata: dict[str, Any]
    error: str | None
    filename: str | None
    folder: str | None
    ref: str | None
    results: dict[str, Any] | None = Field(
        default=None, description="intelligence kinds: the typed result, e.g. {kind: 'speech', text, ...}"
    )
    cache_hit: bool | None = Field(default=None, description="speech/summary/outline: transcript reused")
    title: str | None = Field(default=None, description="summary: also inside results")
    description: str | None = None
    tags: list[str] | None = None
    languages: list[str] | None = None
    created_at: int
    started_at: int | None
    finished_at: int | None
    updated_at: int


class SignatureCreate(BaseModel):
    filename: str = Field(examples=["intro.mp4"])
    folder: str | None = Field(None, examples=["uploads"])
    expiry: int | None = Field(None, description="Unix seconds; default one hour from now")
    method: Literal["get", "put"] = "get"


class SignatureOut(BaseModel):
    domain: str
    filename: str
    folder: str | None
    expiry: int
    method: Literal["get", "put"]
    signature: str
    url: str


class FileOut(BaseModel):
    object: Literal["file"] = "file"
    filename: str
    folder: str | None
    filesize: int
    url: str = Field(description="a signed GET link to the stored file, usable as a task's url")
