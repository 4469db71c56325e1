"""Object storage behind one small interface; ``file`` (a local directory) is the default backend.

Keys look like ``<project>/<task_id>/<name>``; a redo of a task writes the same keys, so a
redelivered task overwrites its outputs instead of duplicating them.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

from taskkit.config import Settings
from taskkit.errors import InvalidRequest, NotFound
from taskkit.signing import check_key


class Storage(Protocol):
    async def put_file(self, key: str, src: Path) -> int:
        """Store a local file under ``key``; return its size in bytes."""
        ...

    async def put_stream(self, key: str, chunks: AsyncIterator[bytes], *, max_bytes: int) -> int:
        """Store a byte stream under ``key`` (uploads); return its size in bytes."""
        ...

    async def fetch_file(self, key: str, dest: Path) -> int:
        """Copy the object at ``key`` to a local file; return its size."""
        ...

    def local_path(self, key: str) -> Path:
        """The file holding ``key``, for serving with Range support; NotFound when absent."""
        ...

    async def delete(self, key: str) -> None:
        """Remove ``key`` if it exists."""
        ...


class FileStorage:
    """Objects as files under one root directory; writes are atomic (temp file + rename)."""

    def __init__(self, root: Path) -> None:
        self._root = root.resolve()
        self._root.mkdir(parents=True, exist_ok=True)
        # Closed to every other user, the uids sandboxed ffmpeg runs as included (taskkit/sandbox.py).
        if self._root.stat().st_uid == os.geteuid():
            self._root.chmod(0o700)

    def _path(self, key: str) -> Path:
        path = (self._root / check_key(key)).resolve()
        if self._root not in path.parents:
            raise InvalidRequest(f"'{key}' is not a valid file path.")
        return path

    def _staging(self, final: Path) -> Path:
        final.parent.mkdir(parents=True, exist_ok=True)
        return final.with_name(f".{final.name}.{uuid.uuid4().hex}.part")

    async def put_file(self, key: str, src: Path) -> int:
        final = self._path(key)
        staging = self._staging(final)
        copy = asyncio.ensure_future(asyncio.to_thread(shutil.copyfile, src, staging))
        try:
            await asyncio.shield(copy)
        except BaseException:
            # A cancelled await leaves the copying thread running: wait for it, then remove what
            # it wrote, so a cancelled upload leaves no staging file behind.
            await asyncio.gather(copy, return_exceptions=True)
            staging.unlink(missing_ok=True)
            raise
        os.replace(staging, final)
        return final.stat().st_size

    async def put_stream(self, key: str, chunks: AsyncIterator[bytes], *, max_bytes: int) -> int:
        final = self._path(key)
        staging = self._staging(final)
        size = 0
        try:
            with staging.open("wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise InvalidRequest(f"The upload is larger than the limit of {max_bytes} bytes.")
                    out.write(chunk)
            os.replace(staging, final)
        finally:
            staging.unlink(missing_ok=True)
        return size

    async def fetch_file(self, key: str, dest: Path) -> int:
        src = self.local_path(key)
        await asyncio.to_thread(shutil.copyfile, src, dest)
        return dest.stat().st_size

    async def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def local_path(self, key: str) -> Path:
        path = self._path(key)
        if not path.is_file():
            raise NotFound("The file does not exist.", kind="file_not_found")
        return path


def open_storage(settings: Settings) -> Storage:
    if settings.storage_backend == "file":
        return FileStorage(settings.storage_dir)
    raise InvalidRequest(
        f"TRANSMUTE_STORAGE_BACKEND={settings.storage_backend!r} is not supported; use 'file'."
    )
