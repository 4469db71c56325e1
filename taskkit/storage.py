"""Object storage behind one small interface, with three backends chosen by
``TRANSMUTE_STORAGE_BACKEND``: ``file`` (a local directory, the default), ``s3`` (any S3-compatible
endpoint, ``taskkit.storage_s3``) and ``nats`` (the JetStream object store, ``taskkit.storage_nats``).

Keys look like ``<project>/<task_id>/<name>``; a redo of a task writes the same keys, so a
redelivered task overwrites its outputs instead of duplicating them.

Every backend is an async context manager: its clients (an HTTP pool, a NATS connection) are
opened once per process on entry and closed on exit. Every transfer streams in bounded chunks, in
both directions, so no backend ever holds a whole file in memory; reads take a byte range, so the
gateway answers HTTP Range requests the same way for all three.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Protocol, Self

from taskkit.config import Settings
from taskkit.errors import InvalidRequest, NotFound
from taskkit.signing import check_key

BACKENDS = ("file", "s3", "nats")


def _clash(key: str) -> InvalidRequest:
    """A key that names a stored folder, or one under a stored file (``a`` and ``a/b``)."""
    return InvalidRequest(f"'{key}' clashes with a stored file or folder of the same name.")


READ_CHUNK_BYTES = 256 * 1024  # one read or write of a local file; the granularity of streaming


class Storage(Protocol):
    async def __aenter__(self) -> Self:
        """Open the backend's clients (and its bucket, if missing); once per process."""
        ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Close the backend's clients."""
        ...

    async def put_file(self, key: str, src: Path) -> int:
        """Store a local file under ``key``; return its size in bytes."""
        ...

    async def put_stream(self, key: str, chunks: AsyncIterator[bytes], *, max_bytes: int) -> int:
        """Store a byte stream under ``key`` (uploads); return its size in bytes. InvalidRequest
        (and nothing stored) past ``max_bytes``."""
        ...

    async def fetch_file(self, key: str, dest: Path) -> int:
        """Copy the object at ``key`` to a local file; return its size. NotFound when absent."""
        ...

    async def size(self, key: str) -> int:
        """The object's size in bytes; NotFound when absent."""
        ...

    def read(self, key: str, start: int, length: int) -> AsyncIterator[bytes]:
        """The object's bytes ``[start, start + length)`` in chunks (an HTTP Range); the range
        must lie within the object (callers check it against ``size``)."""
        ...

    async def download_url(self, key: str, *, expires_in: int) -> str | None:
        """A direct link to ``key`` the client may use instead of the gateway (an S3 presigned
        GET), or None when the backend offers none."""
        ...

    async def delete(self, key: str) -> None:
        """Remove ``key`` if it exists."""
        ...


def not_found() -> NotFound:
    return NotFound("The file does not exist.", kind="file_not_found")


def too_large(max_bytes: int) -> InvalidRequest:
    return InvalidRequest(f"The upload is larger than the limit of {max_bytes} bytes.")


async def rechunk(chunks: AsyncIterator[bytes], size: int, *, max_bytes: int) -> AsyncIterator[bytes]:
    """Chunks of exactly ``size`` bytes (the last one shorter) from a stream of any chunking;
    raises InvalidRequest once more than ``max_bytes`` arrived. Holds at most one chunk."""
    buffer = bytearray()
    total = 0
    async for chunk in chunks:
        total += len(chunk)
        if total > max_bytes:
            raise too_large(max_bytes)
        buffer += chunk
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        yield bytes(buffer)


async def file_chunks(src: Path, size: int) -> AsyncIterator[bytes]:
    """A local file in chunks of ``size`` bytes, read off the event loop."""
    handle: BinaryIO = await asyncio.to_thread(src.open, "rb")
    try:
        while chunk := await asyncio.to_thread(handle.read, size):
            yield chunk
    finally:
        handle.close()


class FileStorage:
    """Objects as files under one root directory; writes are atomic (temp file + rename)."""

    def __init__(self, root: Path) -> None:
        self._root = root.resolve()
        self._root.mkdir(parents=True, exist_ok=True)
        # Closed to every other user, the uids sandboxed ffmpeg runs as included (taskkit/sandbox.py).
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

    async def read(self, key: str, start: int, length: int) -> AsyncIterator[bytes]:
        handle: BinaryIO = await asyncio.to_thread(self.local_path(key).open, "rb")
        try:
            await asyncio.to_thread(handle.seek, start)
            while length > 0 and (
                chunk := await asyncio.to_thread(handle.read, min(length, READ_CHUNK_BYTES))
            ):
                length -= len(chunk)
                yield chunk
        finally:
            handle.close()

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


def open_storage(settings: Settings) -> Storage:
    """The configured backend, not yet opened: enter it (``async with``) once per process."""
    if settings.storage_backend == "file":
        return FileStorage(settings.storage_dir)
    if settings.storage_backend == "s3":
        from taskkit.storage_s3 import S3Storage  # imported only where used: aiobotocore is heavy

        return S3Storage.from_settings(settings)
    if settings.storage_backend == "nats":
        from taskkit.storage_nats import NatsStorage

        return NatsStorage.from_settings(settings)
    raise InvalidRequest(
        f"TRANSMUTE_STORAGE_BACKEND={settings.storage_backend!r} is not supported; "
        f"use one of {', '.join(BACKENDS)}."
    )
