"""Annotated dependencies: settings, the gRPC clients, the caller's project and API version."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from gateway.core.auth import KeyRing
from gateway.core.clients import Clients
from gateway.versions import resolve_version
from taskkit.config import Settings
from taskkit.storage import Storage


def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def get_clients(request: Request) -> Clients:
    return request.app.state.clients  # type: ignore[no-any-return]


def get_storage(request: Request) -> Storage:
    return request.app.state.storage  # type: ignore[no-any-return]


def get_project(request: Request, authorization: Annotated[str | None, Header()] = None) -> str:
    keys: KeyRing = request.app.state.keys
    return keys.project_for(authorization)


def get_version(accept_version: Annotated[str | None, Header()] = None) -> str:
    return resolve_version(accept_version)


SettingsDep = Annotated[Settings, Depends(get_settings)]
ClientsDep = Annotated[Clients, Depends(get_clients)]
StorageDep = Annotated[Storage, Depends(get_storage)]
ProjectDep = Annotated[str, Depends(get_project)]
VersionDep = Annotated[str, Depends(get_version)]
