"""The ``file`` backend: objects as files under one directory (the default, and what a laptop runs).

A write goes to a staging file renamed over the key, and an opened version is an open file, so a
read started before an overwrite goes on reading the old file whole (the rename leaves it to
whoever holds it open) and one started after reads the new one.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self

from taskkit.errors import InvalidRequest
from taskkit.storage.base import READ_CHUNK_BYTES, Version, not_found, read_version, too_large
from taskkit.storage.signing import check_key


def _clash(key: str) -> InvalidRequest:
    """A key that names a stored folder, or one under a stored file (``a`` and ``a/b``)."""
    return InvalidRequest(f"'{key}' clashes with a stored file or folder of the same name.")


class FileStorage:
    """Objects as files under one root directory; writes are atomic (temp file + rename)."""

    def __init__(self, root: Path) -> None:
        self._root = root.resolve()
        self._root.mkdir(parents=True, exist_ok=True)
        # Closed to every other user, the uids sandboxed ffmpeg runs as included (taskkit/media/sandbox.py).
        if self._root.stat().st_uid == os.geteuid():
            self._root.chmod(0o700)

    async def __aenter__(self) -> Self:
        return self  # no client: usable without entering, as the unit tests do

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def _path(self, key: str) -> Path:
        path = (self._root / check_key(key)).resolve()
        if self._root not in path.parents:
            raise InvalidRequest(f"'{key}' is not a valid file path.")
        return path

    def _staging(self, final: Path, key: str) -> Path:
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise _clash(key) from None
        if final.is_dir():
            raise _clash(key)
        return final.with_name(f".{final.name}.{uuid.uuid4().hex}.part")

    async def put_file(self, key: str, src: Path) -> int:
        final = self._path(key)
        staging = self._staging(final, key)
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
        staging = self._staging(final, key)
        size = 0
        try:
            out = await asyncio.to_thread(staging.open, "wb")
            try:
                async for chunk in chunks:  # the disk in a thread: a slow one never stalls the loop
                    size += len(chunk)
                    if size > max_bytes:
                        raise too_large(max_bytes)
                    await asyncio.to_thread(out.write, chunk)
            finally:
                await asyncio.to_thread(out.close)
            os.replace(staging, final)
        finally:
            staging.unlink(missing_ok=True)
        return size

    async def fetch_file(self, key: str, dest: Path) -> int:
        src = self.local_path(key)
        await asyncio.to_thread(shutil.copyfile, src, dest)
        return dest.stat().st_size

    async def size(self, key: str) -> int:
        return self.local_path(key).stat().st_size

    async def open(self, key: str) -> Version:
        path = self.local_path(key)
        try:
            handle: BinaryIO = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError:  # deleted since the check
            raise not_found() from None
        return _OpenFile(handle)

    def read(self, key: str, start: int, length: int) -> AsyncIterator[bytes]:
        return read_version(self.open, key, start, length)

    async def download_url(self, key: str, *, expires_in: int) -> str | None:
        return None

    async def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def local_path(self, key: str) -> Path:
        """The file holding ``key``; NotFound when absent."""
        path = self._path(key)
        if not path.is_file():
            raise not_found()
        return path


class _OpenFile:
    """A stored file held open: the version its key named when it was opened."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        self.size = os.fstat(handle.fileno()).st_size

    async def read(self, start: int, length: int) -> AsyncIterator[bytes]:
        end = min(start + length, self.size)
        while start < end and (
            chunk := await asyncio.to_thread(
                os.pread, self._handle.fileno(), min(end - start, READ_CHUNK_BYTES), start
            )
        ):
            start += len(chunk)
            yield chunk

    async def aclose(self) -> None:
        self._handle.close()
