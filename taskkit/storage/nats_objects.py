"""The ``nats`` storage backend: the JetStream object store, so a deployment that already runs a
JetStream cluster needs no second storage system.

The wire layout is the object store's own (stream ``OBJ_<bucket>``, chunks on
``$O.<bucket>.C.<nuid>``, one rolled-up meta message per object on ``$O.<bucket>.M.<name>``), so
``nats object get`` and every other client read what this writes. Writes and reads are done here
rather than with nats-py's ``ObjectStore.put``/``get`` because those take only a synchronous reader
and buffer a whole push subscription; here uploads publish one chunk at a time from an async
stream, and reads fetch one chunk at a time with direct gets (served by any replica), so memory
stays at one chunk either way and a read can stop at the end of a byte range.

A range read walks the object's chunks from the first one (JetStream cannot index the n-th message
of a subject), so seeking far into a large object costs reading the chunks before it inside the
cluster; what reaches the client is only the range.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext, api
from nats.js.errors import BadRequestError, ObjectNotFoundError
from nats.js.kv import MSG_ROLLUP_SUBJECT
from nats.js.object_store import ObjectStore
from nats.nuid import NUID

from taskkit.config import Settings
from taskkit.records.jetstream import server_urls
from taskkit.storage.base import file_chunks, not_found, rechunk
from taskkit.storage.signing import check_key

log = logging.getLogger(__name__)

_TIMEOUT_S = 10.0  # connect, and each publish / get / stream call
_DIGEST_PREFIX = "SHA-256="


class NatsStorage:
    """Objects in one JetStream object store bucket, created idempotently with ``replicas`` copies."""

    def __init__(self, url: str, *, bucket: str, replicas: int, chunk_bytes: int) -> None:
        self._url = url
        self._bucket = bucket
        self._stream = f"OBJ_{bucket}"
        self._replicas = replicas
        self._chunk_bytes = chunk_bytes
        self._nuid = NUID()
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._store: ObjectStore | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> NatsStorage:
        return cls(
            settings.nats_url,
            bucket=settings.nats_object_bucket,
            replicas=settings.nats_replicas,
            chunk_bytes=settings.nats_object_chunk_bytes,
        )

    async def __aenter__(self) -> Self:
        self._nc = await nats.connect(
            servers=server_urls(self._url),
            name="transmute-storage",
            connect_timeout=_TIMEOUT_S,
            max_reconnect_attempts=-1,
            reconnect_time_wait=1,
        )
        self._js = self._nc.jetstream(timeout=_TIMEOUT_S)
        config = api.ObjectStoreConfig(
            bucket=self._bucket, storage=api.StorageType.FILE, replicas=self._replicas
        )
        try:
            self._store = await self._js.create_object_store(self._bucket, config=config)
        except BadRequestError:
            # It exists with another configuration (say, an earlier replica count): use it as is.
            self._store = await self._js.object_store(self._bucket)
        log.info("storage opened", extra={"backend": "nats", "bucket": self._bucket})
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._nc is not None:
            await self._nc.close()
        self._nc = self._js = self._store = None

    def _opened(self) -> tuple[JetStreamContext, ObjectStore]:
        if self._js is None or self._store is None:
            raise RuntimeError("NatsStorage is used outside `async with`")
        return self._js, self._store

    async def _info(self, key: str) -> api.ObjectInfo:
        _, store = self._opened()
        try:
            return await store.get_info(check_key(key))
        except ObjectNotFoundError:
            raise not_found() from None

    async def put_file(self, key: str, src: Path) -> int:
        return await self._put(key, file_chunks(src, self._chunk_bytes))

    async def put_stream(self, key: str, chunks: AsyncIterator[bytes], *, max_bytes: int) -> int:
        return await self._put(key, rechunk(chunks, self._chunk_bytes, max_bytes=max_bytes))

    async def _put(self, key: str, chunks: AsyncIterator[bytes]) -> int:
        """Publish the chunks under a fresh nuid, then the meta message that makes them the object;
        then purge the chunks of the object it replaced. A failure purges what was published."""
        js, store = self._opened()
        check_key(key)
        nuid = self._nuid.next().decode()
        chunk_subject = f"$O.{self._bucket}.C.{nuid}"
        digest = hashlib.sha256()
        size = count = 0
        try:
            async for chunk in chunks:
                digest.update(chunk)
                await js.publish(chunk_subject, chunk, timeout=_TIMEOUT_S)
                size += len(chunk)
                count += 1
            try:
                previous: api.ObjectInfo | None = await store.get_info(key)
            except ObjectNotFoundError:
                previous = None
            info = api.ObjectInfo(
                name=key,
                bucket=self._bucket,
                nuid=nuid,
                size=size,
                chunks=count,
                digest=_DIGEST_PREFIX + base64.urlsafe_b64encode(digest.digest()).decode(),
                mtime=datetime.now(UTC).isoformat(),
                options=api.ObjectMetaOptions(max_chunk_size=self._chunk_bytes),
            )
            await js.publish(
                self._meta_subject(key),
                json.dumps(info.as_dict()).encode(),
                timeout=_TIMEOUT_S,
                headers={api.Header.ROLLUP: MSG_ROLLUP_SUBJECT},
            )
        except BaseException:
            await asyncio.shield(self._discard_unless_current(key, nuid))
            raise
        if previous is not None and previous.nuid:
            with contextlib.suppress(Exception):  # left over chunks cost space, not correctness
                await js.purge_stream(self._stream, subject=f"$O.{self._bucket}.C.{previous.nuid}")
        return size

    async def _discard_unless_current(self, key: str, nuid: str) -> None:
        """After a failed put, purge its chunks, unless its meta message did land (a publish that
        timed out waiting for its ack may still have been stored) and made them the object.
        Best effort: the put's own error is what the caller must see."""
        js, store = self._opened()
        with contextlib.suppress(Exception):
            try:
                current = await store.get_info(key)
            except ObjectNotFoundError:
                current = None
            if current is None or current.nuid != nuid:
                await js.purge_stream(self._stream, subject=f"$O.{self._bucket}.C.{nuid}")

    def _meta_subject(self, key: str) -> str:
        return f"$O.{self._bucket}.M.{base64.urlsafe_b64encode(key.encode()).decode()}"

    async def _chunks(self, info: api.ObjectInfo) -> AsyncIterator[bytes]:
        """The object's chunks in order, one direct get each."""
        js, _ = self._opened()
        subject = f"$O.{self._bucket}.C.{info.nuid}"
        seq = 1
        for _ in range(info.chunks or 0):
            msg = await js.get_msg(self._stream, seq=seq, subject=subject, next=True, direct=True)
            if msg.seq is None or msg.data is None:
                raise RuntimeError(f"object store chunk of {info.name!r} came back empty")
            seq = msg.seq + 1
            yield msg.data

    async def fetch_file(self, key: str, dest: Path) -> int:
        info = await self._info(key)
        digest = hashlib.sha256()
        size = 0
        with dest.open("wb") as out:
            async for chunk in self._chunks(info):
                digest.update(chunk)
                await asyncio.to_thread(out.write, chunk)
                size += len(chunk)
        expected = (info.digest or "").removeprefix(_DIGEST_PREFIX)
        if expected and base64.urlsafe_b64decode(expected) != digest.digest():
            raise RuntimeError(f"object {key!r} does not match its digest")
        return size

    async def size(self, key: str) -> int:
        return (await self._info(key)).size or 0

    async def read(self, key: str, start: int, length: int) -> AsyncIterator[bytes]:
        info = await self._info(key)
        end = start + length
        offset = 0
        async for chunk in self._chunks(info):
            chunk_start, offset = offset, offset + len(chunk)
            if offset <= start:
                continue
            yield chunk[max(start - chunk_start, 0) : min(end - chunk_start, len(chunk))]
            if offset >= end:
                return

    async def download_url(self, key: str, *, expires_in: int) -> str | None:
        return None  # an object store has no HTTP door of its own: the gateway serves it

    async def delete(self, key: str) -> None:
        _, store = self._opened()
        try:
            await store.delete(check_key(key))
        except ObjectNotFoundError:
            return
