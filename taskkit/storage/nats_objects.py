"""The ``nats`` storage backend: the JetStream object store, so a deployment that already runs a
JetStream cluster needs no second storage system.

The wire layout is the object store's own (stream ``OBJ_<bucket>``, chunks on
``$O.<bucket>.C.<nuid>``, one rolled-up meta message per object on ``$O.<bucket>.M.<name>``), so
``nats object get`` and every other client read what this writes. Writes and reads are done here
rather than with nats-py's ``ObjectStore.put``/``get`` because those take only a synchronous reader
and buffer a whole push subscription; here uploads publish one chunk at a time from an async
stream, and reads fetch one chunk at a time with direct gets (served by any replica), so memory
stays at one chunk either way and a read can stop at the end of a byte range.

A range read starts at the chunk holding its first byte. JetStream cannot fetch the n-th message of
a subject, but a batched direct get says how many of the subject's messages follow the one it
returns, which is that chunk's index, so a few probes find the stream sequence of chunk n: one
when the chunks were stored one after another, about 2·log2 of their spread in the stream when
other puts interleaved. That needs every chunk but the last to be full, which this backend's
writes are and say in an object header (``Transmute-Chunking: fixed``); an object from another
client is walked from its first chunk.

A read is of one version (``taskkit.storage.base``): ``open`` resolves the object's info once and
the version reads only the chunks of that info's nuid. A put purges the chunks of the version it
replaced, so a read of a replaced version fails with ``replaced`` before or between chunks,
never with another version's bytes.
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
from nats.js.errors import APIError, BadRequestError, NotFoundError, ObjectNotFoundError
from nats.js.kv import MSG_ROLLUP_SUBJECT
from nats.js.object_store import ObjectStore
from nats.nuid import NUID

from taskkit.config import Settings
from taskkit.records.jetstream import server_urls
from taskkit.storage.base import Version, file_chunks, not_found, read_version, rechunk, replaced
from taskkit.storage.signing import check_key

log = logging.getLogger(__name__)

_TIMEOUT_S = 10.0  # connect, and each publish / get / stream call
_DIGEST_PREFIX = "SHA-256="
_CHUNKING = "Transmute-Chunking"  # object header; "fixed": every chunk but the last is full
_FIXED = "fixed"


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
                headers={_CHUNKING: [_FIXED]},  # a list of values, as the Go client reads headers
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

    def _chunk_subject(self, info: api.ObjectInfo) -> str:
        return f"$O.{self._bucket}.C.{info.nuid}"

    async def _chunks(self, info: api.ObjectInfo, *, seq: int = 1, first: int = 0) -> AsyncIterator[bytes]:
        """The version's chunks in order from chunk ``first`` (the first of its chunks at or after
        stream sequence ``seq``), one direct get each; ``replaced`` once they are gone."""
        js, _ = self._opened()
        subject = self._chunk_subject(info)
        for _ in range(first, info.chunks or 0):
            try:
                msg = await js.get_msg(self._stream, seq=seq, subject=subject, next=True, direct=True)
            except NotFoundError:
                raise replaced() from None
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

    async def open(self, key: str) -> Version:
        return _NatsVersion(self, await self._info(key))

    def read(self, key: str, start: int, length: int) -> AsyncIterator[bytes]:
        return read_version(self.open, key, start, length)

    async def _range(self, info: api.ObjectInfo, start: int, length: int) -> AsyncIterator[bytes]:
        """Bytes ``[start, start + length)`` of one version, from the chunk holding ``start``."""
        end = start + length
        if length <= 0 or start >= (info.size or 0):
            return
        seq, first, offset = await self._seek(info, start)
        async for chunk in self._chunks(info, seq=seq, first=first):
            chunk_start, offset = offset, offset + len(chunk)
            if offset <= start:
                continue
            yield chunk[max(start - chunk_start, 0) : min(end - chunk_start, len(chunk))]
            if offset >= end:
                return

    async def _seek(self, info: api.ObjectInfo, start: int) -> tuple[int, int, int]:
        """Where reading byte ``start`` begins: a stream sequence, the index of the chunk found
        there and the offset of its first byte. Only an object in fixed-size chunks is entered
        past its first chunk."""
        size = _fixed_chunk_bytes(info)
        index = start // size if size else 0
        if index == 0:
            return 1, 0, 0
        return await self._locate(self._chunk_subject(info), index, info.chunks or 0), index, index * size

    async def _locate(self, subject: str, index: int, chunks: int) -> int:
        """The stream sequence of chunk ``index`` of ``chunks``, narrowed between two bounds: chunk
        i found at sequence f puts it at f + (index - i) or later when i < index, and a probe at s
        finding chunk i > index puts it at s - (i - index) or earlier. The bounds start equal for
        chunks stored one after another; else probes alternate between the lower bound (right
        when the rest were) and the middle (which halves the gap)."""
        first, at_first = await self._probe(subject, 1, chunks)
        last = await self._last(subject)
        if at_first != 0:
            raise replaced()  # the subject no longer holds this version's chunks
        low, high = first + index, last - (chunks - 1 - index)
        middle = False
        while low < high:
            at = (low + high) // 2 if middle else low
            found, i = await self._probe(subject, at, chunks)
            if i == index:
                return found
            if i < index:
                low = found + (index - i)
            else:
                high = at - (i - index)
            middle = not middle
        return low

    async def _probe(self, subject: str, seq: int, chunks: int) -> tuple[int, int]:
        """The first chunk at or after ``seq``: its stream sequence and its index, from how many
        chunks follow it (``Nats-Num-Pending``, sent with a batched direct get)."""
        nc = self._nc
        if nc is None:
            raise RuntimeError("NatsStorage is used outside `async with`")
        request = {"seq": seq, "next_by_subj": subject, "batch": 1}
        msg = await nc.request(
            f"$JS.API.DIRECT.GET.{self._stream}", json.dumps(request).encode(), timeout=_TIMEOUT_S
        )
        headers = msg.headers or {}
        if headers.get("Status") == "404":
            raise replaced()
        if "Status" in headers:
            APIError.from_msg(msg)
        return int(headers["Nats-Sequence"]), chunks - 1 - int(headers["Nats-Num-Pending"])

    async def _last(self, subject: str) -> int:
        js, _ = self._opened()
        try:
            msg = await js.get_msg(self._stream, subject=subject, direct=True)
        except NotFoundError:
            raise replaced() from None
        return int(msg.seq or 0)

    async def download_url(self, key: str, *, expires_in: int) -> str | None:
        return None  # an object store has no HTTP door of its own: the gateway serves it

    async def delete(self, key: str) -> None:
        _, store = self._opened()
        try:
            await store.delete(check_key(key))
        except ObjectNotFoundError:
            return


def _fixed_chunk_bytes(info: api.ObjectInfo) -> int:
    """The chunk size of an object whose header says every chunk but the last is full (and whose
    chunk count agrees), else 0: chunks of unknown sizes can only be walked."""
    size = (info.options.max_chunk_size if info.options else None) or 0
    if (info.headers or {}).get(_CHUNKING) != [_FIXED] or size <= 0:
        return 0
    return size if info.chunks == -(-(info.size or 0) // size) else 0


class _NatsVersion:
    """One version of an object: its info, whose nuid names the only chunks it reads."""

    def __init__(self, storage: NatsStorage, info: api.ObjectInfo) -> None:
        self._storage = storage
        self._info = info
        self.size = info.size or 0

    def read(self, start: int, length: int) -> AsyncIterator[bytes]:
        return self._storage._range(self._info, start, length)

    async def aclose(self) -> None:
        return None
