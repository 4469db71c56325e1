"""Object storage behind one small interface (``Storage``), with three backends chosen by
``TRANSMUTE_STORAGE_BACKEND``: ``file`` (a local directory, the default), ``s3`` (any S3-compatible
endpoint, ``taskkit.storage_s3``) and ``nats`` (the JetStream object store, ``taskkit.storage.nats_objects``).

Keys look like ``<project>/<task_id>/<name>``; a redo of a task writes the same keys, so a
redelivered task overwrites its outputs instead of duplicating them.

Every backend is an async context manager: its clients (an HTTP pool, a NATS connection) are
opened once per process on entry and closed on exit. Every transfer streams in bounded chunks, in
both directions, so no backend ever holds a whole file in memory; reads take a byte range, so the
gateway answers HTTP Range requests the same way for all three.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Protocol, Self

from taskkit.errors import InvalidRequest, NotFound

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
