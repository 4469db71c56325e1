"""The HTTP API: its routes, the shapes of its bodies (the pydantic schemas the OpenAPI document is
built from, a task as JSON, and the 2025-08-20 API version's shapes), and the dependencies the
routes share (settings, clients, storage, project, version). Which family serves a kind is read
from the protos (``taskkit.rpc.KINDS``).
"""

from gateway.api.deps import authenticate
from gateway.api.routes import ROUTERS
from gateway.api.schemas import (
    ErrorBody,
    FileEntryOut,
    FileOut,
    HealthOut,
    RenditionOut,
    SignatureCreate,
    SignatureOut,
    TaskCreate,
    TaskOut,
)
from gateway.api.task_json import task_json
from gateway.api.versions import (
    LATEST,
    V2025_08_20,
    page_window_a25,
    request_from_a25,
    resolve_version,
    task_to_a25,
)

__all__ = [
    "LATEST",
    "ROUTERS",
    "V2025_08_20",
    "ErrorBody",
    "FileEntryOut",
    "FileOut",
    "HealthOut",
    "RenditionOut",
    "SignatureCreate",
    "SignatureOut",
    "TaskCreate",
    "TaskOut",
    "authenticate",
    "page_window_a25",
    "request_from_a25",
    "resolve_version",
    "task_json",
    "task_to_a25",
]
