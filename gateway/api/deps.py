"""Annotated dependencies: settings, the gRPC clients, the caller's project and API version."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from gateway.api.versions import resolve_version
from gateway.core import KeyRing
from taskkit.config import Settings
from taskkit.rpc import Clients
from taskkit.storage import Storage


def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def get_clients(request: Request) -> Clients:
    return request.app.state.clients  # type: ignore[no-any-return]


def get_storage(request: Request) -> Storage:
    return request.app.state.storage  # type: ignore[no-any-return]


_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")


def get_project(
    request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None
) -> str:
    """The caller's project. Authentication itself runs earlier, in ``authenticate``, so that a
    caller without a valid key gets 401 before the body is even parsed."""
    return request.state.project  # type: ignore[no-any-return]


def authenticate(request: Request) -> None:
    """Resolve the API key of a request to a project (raises 401 errors)."""
    keys: KeyRing = request.app.state.keys
    request.state.project = keys.project_for(request.headers.get("authorization"))


def get_version(accept_version: Annotated[str | None, Header()] = None) -> str:
    return resolve_version(accept_version)


SettingsDep = Annotated[Settings, Depends(get_settings)]
ClientsDep = Annotated[Clients, Depends(get_clients)]
StorageDep = Annotated[Storage, Depends(get_storage)]
ProjectDep = Annotated[str, Depends(get_project)]
VersionDep = Annotated[str, Depends(get_version)]
