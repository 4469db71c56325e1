"""A signed download whose file is overwritten after the route looked it up: the body is the
version whose size the headers state, whole (the file backend keeps it open), or the response
fails (the object store freed it); never the new file's bytes under the old one's length.

The real app and real backends (a directory, a nats-server), with the app's storage wrapped so
the overwrite lands right after the route's lookup (``open``; ``size`` in the route before it).
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from gateway import create_app
from gateway.api.deps import get_storage
from taskkit.config import Settings
from taskkit.errors import NotFound
from taskkit.rpc import Clients
from taskkit.storage import Storage, Version, signing
from tests.support.nats_server import running_nats

SECRET = "file-versions-secret"
KEY = "p/task_v/clip.mp4"
OLD, NEW = os.urandom(300_000), os.urandom(450_000)  # the new one longer: a prefix of it would fit


async def chunks_of(data: bytes) -> AsyncIterator[bytes]:
    for at in range(0, len(data), 64 * 1024):
        yield data[at : at + 64 * 1024]


class OverwrittenAfterLookup:
    """The app's backend, writing ``NEW`` under the key right after each lookup of it, and
    counting the versions it opened and the ones closed again."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self.opened = self.closed = 0

    async def _overwrite(self) -> None:
        await self._storage.put_stream(KEY, chunks_of(NEW), max_bytes=len(NEW))

    async def open(self, key: str) -> Version:
        version = await self._storage.open(key)
        self.opened += 1
        await self._overwrite()
        return Counted(version, self)

    async def size(self, key: str) -> int:
        size = await self._storage.size(key)
        await self._overwrite()
        return size

    def __getattr__(self, name: str) -> Any:
        return getattr(self._storage, name)


class Counted:
    def __init__(self, version: Version, owner: OverwrittenAfterLookup) -> None:
        self._version, self._owner = version, owner
        self.size = version.size

    def read(self, start: int, length: int) -> AsyncIterator[bytes]:
        return self._version.read(start, length)

    async def aclose(self) -> None:
        self._owner.closed += 1
        await self._version.aclose()


@pytest.fixture(params=["file", "nats"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    values: dict[str, Any] = {
        "api_key": SecretStr("file-versions-key"),
        "signing_secret": SecretStr(SECRET),
        "storage_backend": request.param,
        "storage_dir": tmp_path / "storage",
        "nats_object_chunk_bytes": 64 * 1024,
    }
    if request.param == "file":
        yield Settings(**values)
        return
    with running_nats(tmp_path / "nats") as url:
        yield Settings(**values, nats_url=url)


@pytest.fixture
def app(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    monkeypatch.setattr(Clients, "from_settings", lambda _: Clients(tasks=None, families={}))  # type: ignore[arg-type]
    return create_app(settings)


def link(key: str) -> str:
    return signing.signed_path(SECRET, key, expiry=int(time.time()) + 600)


def store_old(client: TestClient) -> None:
    """Write ``OLD`` under the key through the app's own backend, on the app's event loop."""
    storage: Storage = client.app.state.storage  # type: ignore[attr-defined]

    async def put() -> None:
        await storage.put_stream(KEY, chunks_of(OLD), max_bytes=len(OLD))

    assert client.portal is not None
    client.portal.call(put)


def download(client: TestClient, **headers: str) -> bytes | None:
    """Store ``OLD``, then download it through the overwriting backend: the body, or None when
    the response failed part way."""
    store_old(client)
    try:
        response = client.get(link(KEY), headers=headers)
    except RuntimeError as failed:  # raised once the headers went out: the server cuts the body
        assert isinstance(failed.__cause__, NotFound), failed
        return None
    assert response.status_code in (200, 206), response.text
    assert int(response.headers["content-length"]) == len(response.content)
    return response.content


@pytest.fixture
def wrapped(app: FastAPI) -> Iterator[tuple[TestClient, OverwrittenAfterLookup]]:
    with TestClient(app) as client:
        overwriting = OverwrittenAfterLookup(app.state.storage)
        app.dependency_overrides[get_storage] = lambda: overwriting
        yield client, overwriting


def test_a_download_is_one_whole_version(
    settings: Settings, wrapped: tuple[TestClient, OverwrittenAfterLookup]
) -> None:
    client, overwriting = wrapped
    body = download(client)
    if settings.storage_backend == "file":
        assert body == OLD  # the open file is the old version, whole
    else:
        assert body is None  # its chunks were purged: the stream fails, it does not shorten or mix
    ranged = download(client, range="bytes=1000-1999")
    assert ranged in ((OLD[1000:2000],) if settings.storage_backend == "file" else (None,))
    assert overwriting.opened == overwriting.closed == 2


def test_every_version_the_route_opens_is_closed(wrapped: tuple[TestClient, OverwrittenAfterLookup]) -> None:
    """HEAD and an unsatisfiable range answer without a body; the version is let go either way."""
    client, overwriting = wrapped
    store_old(client)
    assert client.head(link(KEY)).headers["content-length"] == str(len(OLD))
    store_old(client)
    assert client.get(link(KEY), headers={"range": f"bytes={len(OLD)}-"}).status_code == 416
    assert overwriting.opened == overwriting.closed == 2


def test_a_missing_file_is_404(wrapped: tuple[TestClient, OverwrittenAfterLookup]) -> None:
    client, _ = wrapped
    response = client.get(link("p/task_v/none.mp4"))
    assert response.status_code == 404 and response.json()["kind"] == "file_not_found"
