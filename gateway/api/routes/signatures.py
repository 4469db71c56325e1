"""``POST /signatures``: signed GET or PUT links to a path inside the caller's project."""

from __future__ import annotations

import time

from fastapi import APIRouter

from gateway.api.deps import ProjectDep, SettingsDep
from gateway.api.schemas import ErrorBody, SignatureCreate, SignatureOut
from gateway.core import CheckedRoute
from taskkit.errors import InvalidRequest
from taskkit.storage import signing

router = APIRouter(prefix="/signatures", tags=["signatures"], route_class=CheckedRoute)

_DEFAULT_TTL_S = 3600
_MAX_TTL_S = 7 * 24 * 3600


@router.post("", status_code=201, responses={400: {"model": ErrorBody}, 401: {"model": ErrorBody}})
async def create_signature(body: SignatureCreate, project: ProjectDep, settings: SettingsDep) -> SignatureOut:
    now = int(time.time())
    expiry = body.expiry if body.expiry is not None else now + _DEFAULT_TTL_S
    if not now < expiry <= now + _MAX_TTL_S:
        raise InvalidRequest("expiry must be a Unix time in the future, at most 7 days ahead.")
    folder = body.folder.strip("/") if body.folder else None
    relative = f"{folder}/{body.filename}" if folder else body.filename
    key = signing.check_key(f"{project}/{relative}")
    path = signing.signed_path(
        settings.signing_secret.get_secret_value(), key, expiry=expiry, method=body.method
    )
    sig = path.split("/")[3]
    return SignatureOut(
        domain=settings.base_url.split("://", 1)[-1],
        filename=body.filename,
        folder=folder,
        expiry=expiry,
        method=body.method,
        signature=sig,
        url=settings.base_url + path,
    )
