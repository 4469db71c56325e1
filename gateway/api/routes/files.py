"""Signed file links: ``GET``/``HEAD`` (with HTTP Range, so video seeks in a browser) and ``PUT``
(client-side uploads). No API key: the signature in the path is the grant.

Every storage backend is served the same way: the gateway reads the range from storage in
chunks and streams it. A grant for a single file may instead answer ``307`` to the backend's own
link (an S3 presigned GET, with ``TRANSMUTE_S3_PRESIGNED_DOWNLOADS``), taking the bytes off the
gateway; a folder grant (an HLS/DASH package, a thumbnails sprite set) is always streamed here,
because a player resolves the playlist's relative references against the playlist's own URL, and
those must stay under the same signed ``/files/<expiry>/<signature>/`` prefix.

A download opens one version of the file (``taskkit.storage.base``): its ``Content-Length`` and
``Content-Range`` come from the same version as its bytes, so an overwrite meanwhile never makes a
response shorter than it says or mixes two files; where the old version is gone the stream stops
with an error, which the client sees as a broken response, not as a complete one.
"""

from __future__ import annotations

import mimetypes
import posixpath
import time

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse

from gateway.api.deps import SettingsDep, StorageDep
from gateway.api.schemas import ErrorBody, FileOut
from gateway.core import Unsatisfiable, parse_range
from taskkit.errors import PermissionDenied
from taskkit.storage import Storage, Version, read_and_close, signing

router = APIRouter(prefix=signing.FILES_ROUTE, tags=["files"])

_DENIED = "The link's signature is invalid or it has expired."
_CACHE = "private, max-age=3600"


def _authorize(settings: SettingsDep, method: str, expiry: int, sig: str, key: str) -> str:
    """The grant (the key, or a folder above it ending in ``/``) the link carries."""
    signing.check_key(key)
    grant = signing.granted(settings.signing_secret.get_secret_value(), method, expiry, sig, key)
    if grant is None:
        raise PermissionDenied(_DENIED)
    return grant


@router.head("/{expiry}/{sig}/{key:path}", include_in_schema=False)
@router.get(
    "/{expiry}/{sig}/{key:path}",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}},
        206: {"description": "The requested byte range"},
        307: {"description": "A single file's direct storage link (S3 presigned GET)"},
        403: {"model": ErrorBody},
        404: {"model": ErrorBody},
        416: {"description": "The range lies past the end of the file"},
    },
)
async def download(
    expiry: int, sig: str, key: str, request: Request, settings: SettingsDep, storage: StorageDep
) -> Response:
    grant = _authorize(settings, "get", expiry, sig, key)
    version = await storage.open(key)  # the size and the bytes served are of this one version
    try:
        response = await _answer(request, storage, key, grant == key, expiry, version)
    except BaseException:
        await version.aclose()
        raise
    if not isinstance(response, StreamingResponse):
        await version.aclose()  # a streamed body closes it when it ends
    return response


async def _answer(
    request: Request, storage: Storage, key: str, single: bool, expiry: int, version: Version
) -> Response:
    size = version.size
    headers = {"Accept-Ranges": "bytes", "Cache-Control": _CACHE}
    if request.method == "GET" and single:
        direct = await storage.download_url(key, expires_in=expiry - int(time.time()))
        if direct is not None:
            return RedirectResponse(direct, status_code=307, headers={"Cache-Control": "no-store"})
    media_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
    try:
        wanted = parse_range(request.headers.get("range"), size)
    except Unsatisfiable:
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    start, length, status = 0, size, 200
    if wanted is not None:
        start, length, status = wanted.start, wanted.length, 206
        headers["Content-Range"] = wanted.content_range(size)
    headers["Content-Length"] = str(length)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=media_type)
    return StreamingResponse(
        read_and_close(version, start, length), status_code=status, headers=headers, media_type=media_type
    )


@router.put(
    "/{expiry}/{sig}/{key:path}",
    status_code=201,
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
) -> FileOut:
    """Store the request body under the signed path; the reply's ``url`` can be a task's input."""
    _authorize(settings, "put", expiry, sig, key)
    size = await storage.put_stream(key, request.stream(), max_bytes=settings.max_input_bytes)
    folder, filename = posixpath.split(key.split("/", 1)[1]) if "/" in key else ("", key)
    url = signing.signed_url(
        settings.base_url, settings.signing_secret.get_secret_value(), key, ttl=settings.link_ttl_seconds
    )
    return FileOut(filename=filename, folder=folder or None, filesize=size, url=url)
