"""The ``s3`` storage backend: any S3-compatible endpoint (AWS S3, SeaweedFS, MinIO, Ceph RGW, R2).

The client is aiobotocore: it is asyncio-native (one event loop serves the gateway and the
worker, so a blocking client would need a thread per transfer), it reuses botocore's request
signing, presigning, retries and endpoint/addressing rules, which every S3-compatible server is
tested against, and it exposes the multipart calls directly, so parts are read from disk one at
a time. (``minio``'s client is synchronous; ``aioboto3`` is aiobotocore plus a resource layer we
do not need.)

Memory per transfer is bounded by one part on upload (``s3_part_size_bytes``; files under
``s3_multipart_threshold_bytes`` go up in one PUT) and by one read chunk on download. Checksums
are computed only where the API requires them, so servers that predate the flexible-checksum
headers accept every request.

An opened version is pinned by its ``VersionId`` where the bucket keeps versions (a read then gets
that version whole, overwritten or not), else by its ETag (``If-Match``: a read of an object
overwritten since answers 412, raised as ``replaced``). One GET streams one version either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mimetypes
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from taskkit.config import Settings
from taskkit.storage.base import (
    READ_CHUNK_BYTES,
    Version,
    file_chunks,
    not_found,
    read_version,
    rechunk,
    replaced,
)
from taskkit.storage.signing import check_key

log = logging.getLogger(__name__)

MIN_PART_BYTES = 5 * 1024**2  # S3 rejects smaller parts (but the last)
MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # SigV4 presigned URLs live at most a week
_MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}
_CHANGED = {"412", "PreconditionFailed", "NoSuchVersion"}  # a pinned version that is gone


def _missing(error: ClientError) -> bool:
    return str(error.response.get("Error", {}).get("Code", "")) in _MISSING


def _content_type(key: str) -> str:
    return mimetypes.guess_type(key)[0] or "application/octet-stream"


class S3Storage:
    """Objects in one bucket; ``key`` is the object key."""

    def __init__(
        self,
        *,
        bucket: str,
        client_args: dict[str, Any],
        create_bucket: bool,
        region: str,
        multipart_threshold: int,
        part_size: int,
        presigned_downloads: bool,
    ) -> None:
        if part_size < MIN_PART_BYTES:
            raise ValueError(f"TRANSMUTE_S3_PART_SIZE_BYTES must be at least {MIN_PART_BYTES} (S3's minimum)")
        self._bucket = bucket
        self._client_args = client_args
        self._create_bucket = create_bucket
        self._region = region
        self._threshold = max(multipart_threshold, part_size)
        self._part_size = part_size
        self._presigned = presigned_downloads
        self._exit = AsyncExitStack()
        self._client: Any = None

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Storage:
        secret = settings.s3_secret_access_key.get_secret_value()
        config = AioConfig(
            s3={"addressing_style": settings.s3_addressing_style},
            signature_version="s3v4",
            connect_timeout=settings.s3_timeout_seconds,
            read_timeout=settings.s3_timeout_seconds,
            retries={"max_attempts": 3, "mode": "standard"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        return cls(
            bucket=settings.s3_bucket,
            client_args={
                "endpoint_url": settings.s3_endpoint_url or None,
                "region_name": settings.s3_region,
                "aws_access_key_id": settings.s3_access_key_id or None,
                "aws_secret_access_key": secret or None,
                "config": config,
            },
            create_bucket=settings.s3_create_bucket,
            region=settings.s3_region,
            multipart_threshold=settings.s3_multipart_threshold_bytes,
            part_size=settings.s3_part_size_bytes,
            presigned_downloads=settings.s3_presigned_downloads,
        )

    async def __aenter__(self) -> Self:
        self._client = await self._exit.enter_async_context(
            get_session().create_client("s3", **self._client_args)
        )
        if self._create_bucket:
            await self._ensure_bucket()
        log.info("storage opened", extra={"backend": "s3", "bucket": self._bucket})
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._exit.aclose()
        self._client = None

    @property
    def client(self) -> Any:
        if self._client is None:
            raise RuntimeError("S3Storage is used outside `async with`")
        return self._client

    async def _ensure_bucket(self) -> None:
        try:
            await self.client.head_bucket(Bucket=self._bucket)
            return
        except ClientError as error:
            if not _missing(error):
                raise
        args: dict[str, Any] = {"Bucket": self._bucket}
        if self._region != "us-east-1":  # AWS refuses an explicit us-east-1 constraint
            args["CreateBucketConfiguration"] = {"LocationConstraint": self._region}
        try:
            await self.client.create_bucket(**args)
            log.info("bucket created", extra={"bucket": self._bucket})
        except ClientError as error:  # another process created it meanwhile
            if error.response.get("Error", {}).get("Code") not in (
                "BucketAlreadyOwnedByYou",
                "BucketAlreadyExists",
            ):
                raise

    async def put_file(self, key: str, src: Path) -> int:
        size = src.stat().st_size
        if size < self._threshold:
            return await self._put(key, file_chunks(src, size + 1), size + 1)
        return await self._put(key, file_chunks(src, self._part_size), self._part_size)

    async def put_stream(self, key: str, chunks: AsyncIterator[bytes], *, max_bytes: int) -> int:
        parts = rechunk(chunks, self._part_size, max_bytes=max_bytes)
        return await self._put(key, parts, self._part_size)

    async def _put(self, key: str, parts: AsyncIterator[bytes], part_size: int) -> int:
        """One PUT when the first part is short (the whole stream), else a multipart upload that
        holds one part at a time (aborted on failure, so no part is left stored or visible)."""
        check_key(key)
        body: bytes | None = await anext(parts, b"")
        assert body is not None
        if len(body) < part_size:
            await self.client.put_object(
                Bucket=self._bucket, Key=key, Body=body, ContentType=_content_type(key)
            )
            return len(body)
        created = await self.client.create_multipart_upload(
            Bucket=self._bucket, Key=key, ContentType=_content_type(key)
        )
        upload_id = created["UploadId"]
        done: list[dict[str, Any]] = []
        size = 0
        try:
            while body is not None:
                number = len(done) + 1
                answer = await self.client.upload_part(
                    Bucket=self._bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
                )
                done.append({"PartNumber": number, "ETag": answer["ETag"]})
                size += len(body)
                body = None  # freed before the next part is read
                body = await anext(parts, None)
            await self.client.complete_multipart_upload(
                Bucket=self._bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": done}
            )
        except BaseException:
            # Best effort: a failed abort (often the same network fault) must not hide the cause;
            # a bucket lifecycle rule (AbortIncompleteMultipartUpload) collects what is left.
            with contextlib.suppress(Exception):
                await asyncio.shield(
                    self.client.abort_multipart_upload(Bucket=self._bucket, Key=key, UploadId=upload_id)
                )
            raise
        return size

    async def _get(self, key: str, **extra: Any) -> Any:
        try:
            return await self.client.get_object(Bucket=self._bucket, Key=check_key(key), **extra)
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code", "")) in _CHANGED:
                raise replaced() from None
            if _missing(error):
                raise not_found() from None
            raise

    async def fetch_file(self, key: str, dest: Path) -> int:
        answer = await self._get(key)
        size = 0
        async with answer["Body"] as body:
            with dest.open("wb") as out:
                async for chunk in body.iter_chunks(READ_CHUNK_BYTES):
                    await asyncio.to_thread(out.write, chunk)
                    size += len(chunk)
        return size

    async def _head(self, key: str) -> Any:
        try:
            return await self.client.head_object(Bucket=self._bucket, Key=check_key(key))
        except ClientError as error:
            if _missing(error):
                raise not_found() from None
            raise

    async def size(self, key: str) -> int:
        return int((await self._head(key))["ContentLength"])

    async def open(self, key: str) -> Version:
        head = await self._head(key)
        version = head.get("VersionId")
        pin = {"VersionId": version} if version and version != "null" else {"IfMatch": head["ETag"]}
        return _S3Version(self, key, int(head["ContentLength"]), pin)

    def read(self, key: str, start: int, length: int) -> AsyncIterator[bytes]:
        return read_version(self.open, key, start, length)

    async def _read(self, key: str, start: int, length: int, pin: dict[str, str]) -> AsyncIterator[bytes]:
        if length <= 0:
            return
        answer = await self._get(key, Range=f"bytes={start}-{start + length - 1}", **pin)
        async with answer["Body"] as body:
            async for chunk in body.iter_chunks(READ_CHUNK_BYTES):
                yield chunk

    async def download_url(self, key: str, *, expires_in: int) -> str | None:
        if not self._presigned:
            return None
        url: str = await self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self._bucket, "Key": check_key(key), "ResponseContentType": _content_type(key)},
            ExpiresIn=max(1, min(expires_in, MAX_PRESIGN_SECONDS)),
        )
        return url

    async def delete(self, key: str) -> None:
        await self.client.delete_object(Bucket=self._bucket, Key=check_key(key))


class _S3Version:
    """One version of an object, named by its version id or ETag (``pin``: GET parameters)."""

    def __init__(self, storage: S3Storage, key: str, size: int, pin: dict[str, str]) -> None:
        self._storage = storage
        self._key = key
        self._pin = pin
        self.size = size

    def read(self, start: int, length: int) -> AsyncIterator[bytes]:
        return self._storage._read(self._key, start, length, self._pin)

    async def aclose(self) -> None:
        return None
