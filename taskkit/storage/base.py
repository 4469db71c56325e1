"""Object storage behind one small interface (``Storage``), with three backends chosen by
``TRANSMUTE_STORAGE_BACKEND``: ``file`` (a local directory, the default), ``s3`` (any S3-compatible
endpoint, ``taskkit.storage_s3``) and ``nats`` (the JetStream object store, ``taskkit.storage.nats_objects``).

Keys look like ``<project>/<task_id>/<name>``; a redo of a task writes the same keys, so a
redelivered task overwrites its outputs instead of duplicating them.

Every backend is an async context manager: its clients (an HTTP pool, a NATS connection) are
opened once per process on entry and closed on exit. Every transfer streams in bounded chunks, in
both directions, so no backend ever holds a whole file in memory; reads take a byte range, so the
gateway answers HTTP Range requests the same way for all three.

A read is of one version of an object: ``open`` resolves the key once, and the ``Version`` it
returns gives that version's size and only that version's bytes, so a download whose object is
overwritten meanwhile is never cut short or stitched from two versions. A backend that still holds
the version it opened (an open file; an S3 version id) serves it whole; one whose writes free the
old version (the object store's chunks; S3 without versioning, checked by ETag) fails the read
with ``replaced`` instead, before or between chunks, never with a short body.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Protocol, Self

from taskkit.errors import InvalidRequest, NotFound

READ_CHUNK_BYTES = 256 * 1024  # one read or write of a local file; the granularity of streaming


class Version(Protocol):
    """One version of a stored object, fixed by ``Storage.open``; close it after use."""

    @property
    def size(self) -> int:
        """The version's size in bytes."""
        ...

    def read(self, start: int, length: int) -> AsyncIterator[bytes]:
        """The version's bytes ``[start, start + length)`` in chunks (an HTTP Range); the range
        must lie within ``size``. NotFound (``replaced``) once the version is gone."""
        ...

    async def aclose(self) -> None:
        """Let go of the version (an open file)."""
        ...


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

    async def open(self, key: str) -> Version:
        """The object's current version, its size and bytes resolved once; NotFound when absent."""
        ...

    def read(self, key: str, start: int, length: int) -> AsyncIterator[bytes]:
        """The bytes ``[start, start + length)`` of the object's current version in chunks; the
        range must lie within it. A caller that also needs the size opens the version instead."""
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


def replaced() -> NotFound:
    """The version being read is gone: the object was overwritten or deleted meanwhile."""
    return NotFound("The file was replaced while it was read; request it again.", kind="file_not_found")


async def read_version(
    opening: Callable[[str], Awaitable[Version]], key: str, start: int, length: int
) -> AsyncIterator[bytes]:
    """``Storage.read`` for every backend: open the key's version, read the range, close it."""
    async for chunk in read_and_close(await opening(key), start, length):
        yield chunk


async def read_and_close(version: Version, start: int, length: int) -> AsyncIterator[bytes]:
    """The range of ``version``, which is closed when the reading ends, however it ends."""
    try:
        async for chunk in version.read(start, length):
            yield chunk
    finally:
        await version.aclose()


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
