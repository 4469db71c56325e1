"""Signed file links: ``GET``/``HEAD`` (with HTTP Range, so video seeks in a browser) and ``PUT``
(client-side uploads). No API key: the signature in the path is the grant."""

from __future__ import annotations

import mimetypes
import posixpath

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse

from gateway.api.deps import SettingsDep, StorageDep
from gateway.schemas import ErrorBody, FileOut
from taskkit import signing
from taskkit.errors import PermissionDenied

router = APIRouter(prefix=signing.FILES_ROUTE, tags=["files"])

_DENIED = "The link's signature is invalid or it has expired."


def _authorize(settings: SettingsDep, method: str, expiry: int, sig: str, key: str) -> None:
    signing.check_key(key)
    if not signing.verify(settings.signing_secret.get_secret_value(), method, expiry, sig, key):
        raise PermissionDenied(_DENIED)


@router.head("/{expiry}/{sig}/{key:path}", include_in_schema=False)
@router.get(
    "/{expiry}/{sig}/{key:path}",
    response_class=FileResponse,
    responses={403: {"model": ErrorBody}, 404: {"model": ErrorBody}},
)
async def download(
    expiry: int, sig: str, key: str, settings: SettingsDep, storage: StorageDep
) -> FileResponse:
    _authorize(settings, "get", expiry, sig, key)
    path = storage.local_path(key)
    media_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "private, max-age=3600"})


@router.put(
    "/{expiry}/{sig}/{key:path}",
    status_code=201,
    response_model=FileOut,
    responses={403: {"model": ErrorBody}, 400: {"model": ErrorBody}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def upload(
    expiry: int, sig: str, key: str, request: Request, settings: SettingsDep, storage: StorageDep
) -> JSONResponse:
    """Store the request body under the signed path; the reply's ``url`` can be a task's input."""
    _authorize(settings, "put", expiry, sig, key)
    size = await storage.put_stream(key, request.stream(), max_bytes=settings.max_input_bytes)
    folder, filename = posixpath.split(key.split("/", 1)[1]) if "/" in key else ("", key)
    url = signing.signed_url(
        settings.base_url, settings.signing_secret.get_secret_value(), key, ttl=settings.link_ttl_seconds
    )
    body = FileOut(filename=filename, folder=folder or None, filesize=size, url=url)
    return JSONResponse(body.model_dump(), status_code=201)
