"""The three storage backends against real servers: a directory, SeaweedFS's S3 gateway and
nats-server's JetStream object store. Every backend must pass the same contract: round trips,
streams of any chunking, byte ranges, NotFound for missing keys, overwrites, and large files moved
with memory bounded by one part or chunk."""

from __future__ import annotations

import asyncio
import hashlib
import os
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import nats
import pytest
from transmute.tasks.v1 import tasks_pb2

from gateway.core import ByteRange, Unsatisfiable, parse_range
from stack.seaweed import SeaweedS3
from taskkit.config import Settings
from taskkit.errors import InvalidRequest, NotFound
from taskkit.runtime import Output
from taskkit.runtime.uploads import store_outputs
from taskkit.storage import Storage, open_storage, signing
from taskkit.storage.local import FileStorage
from taskkit.storage.nats_objects import NatsStorage
from taskkit.storage.s3 import MIN_PART_BYTES, S3Storage
from tests.support.nats_server import running_nats

BACKENDS = ("file", "s3", "nats")
NATS_CHUNK = 64 * 1024


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    with SeaweedS3(tmp_path_factory.mktemp("seaweed")) as server:
        yield server


@pytest.fixture(scope="module")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_nats(tmp_path_factory.mktemp("nats")) as url:
        yield url


def settings_for(
    backend: str, tmp: Path, seaweed: SeaweedS3 | None, nats_url: str | None, **extra: object
) -> Settings:
    values: dict[str, object] = {"storage_backend": backend, "storage_dir": tmp / "storage"}
    if backend == "s3":
        assert seaweed is not None
        values.update(
            s3_endpoint_url=seaweed.endpoint,
            s3_bucket=seaweed.bucket,
            s3_access_key_id=seaweed.access_key,
            s3_secret_access_key=seaweed.secret_key,
            s3_part_size_bytes=MIN_PART_BYTES,
            s3_multipart_threshold_bytes=MIN_PART_BYTES,
        )
    if backend == "nats":
        assert nats_url is not None
        values.update(nats_url=nats_url, nats_object_chunk_bytes=NATS_CHUNK)
    values.update(extra)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(params=BACKENDS)
async def storage(
    request: pytest.FixtureRequest, tmp_path: Path, seaweed: SeaweedS3, nats_url: str
) -> AsyncIterator[Storage]:
    async with open_storage(settings_for(request.param, tmp_path, seaweed, nats_url)) as opened:
        yield opened


def write_random(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.write_bytes(data)
    return data


async def collect(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


async def stream_of(data: bytes, piece: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), piece):
        yield data[i : i + piece]


def test_the_factory_picks_each_backend(tmp_path: Path) -> None:
    assert isinstance(open_storage(settings_for("file", tmp_path, None, None)), FileStorage)
    s3 = Settings(storage_backend="s3", s3_endpoint_url="http://127.0.0.1:9", storage_dir=tmp_path)
    assert isinstance(open_storage(s3), S3Storage)
    assert isinstance(open_storage(Settings(storage_backend="nats", storage_dir=tmp_path)), NatsStorage)
    with pytest.raises(InvalidRequest, match="file, s3, nats"):
        open_storage(Settings(storage_backend="ftp", storage_dir=tmp_path))


def test_s3_refuses_parts_below_its_minimum(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least"):
        open_storage(Settings(storage_backend="s3", s3_part_size_bytes=1024, storage_dir=tmp_path))


async def test_put_fetch_size_delete_round_trip(storage: Storage, tmp_path: Path) -> None:
    data = write_random(tmp_path / "in.bin", 300_001)
    key = "p/task_rt/out.bin"
    assert await storage.put_file(key, tmp_path / "in.bin") == len(data)
    assert await storage.size(key) == len(data)
    assert await storage.fetch_file(key, tmp_path / "back.bin") == len(data)
    assert (tmp_path / "back.bin").read_bytes() == data
    await storage.delete(key)
    with pytest.raises(NotFound):
        await storage.size(key)


async def test_an_empty_file_round_trips(storage: Storage, tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    assert await storage.put_file("p/task_e/empty.txt", tmp_path / "empty") == 0
    assert await storage.size("p/task_e/empty.txt") == 0
    assert await storage.fetch_file("p/task_e/empty.txt", tmp_path / "back") == 0
    assert (tmp_path / "back").read_bytes() == b""


async def test_missing_keys_are_not_found(storage: Storage, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        await storage.size("p/nothing/here.mp4")
    with pytest.raises(NotFound):
        await storage.fetch_file("p/nothing/here.mp4", tmp_path / "x")
    with pytest.raises(NotFound):
        await collect(storage.read("p/nothing/here.mp4", 0, 10))
    await storage.delete("p/nothing/here.mp4")  # deleting what is not there is fine


async def test_streams_of_any_chunking_round_trip(storage: Storage, tmp_path: Path) -> None:
    data = os.urandom(200_003)
    for piece in (1_000, 65_536, 77_777):
        key = f"p/uploads/stream-{piece}.bin"
        assert await storage.put_stream(key, stream_of(data, piece), max_bytes=len(data)) == len(data)
        assert await collect(storage.read(key, 0, len(data))) == data


async def test_a_stream_over_the_limit_stores_nothing(storage: Storage) -> None:
    data = os.urandom(150_000)
    with pytest.raises(InvalidRequest, match="larger than the limit"):
        await storage.put_stream("p/uploads/big.bin", stream_of(data, 10_000), max_bytes=100_000)
    with pytest.raises(NotFound):
        await storage.size("p/uploads/big.bin")


@pytest.mark.parametrize(
    ("start", "length"),
    [(0, 1), (0, 10), (NATS_CHUNK - 5, 10), (NATS_CHUNK, NATS_CHUNK), (100_000, 50_000), (199_990, 10)],
)
async def test_range_reads_return_exactly_the_range(
    storage: Storage, tmp_path: Path, start: int, length: int
) -> None:
    data = write_random(tmp_path / "in.bin", 200_000)
    await storage.put_file("p/task_r/out.bin", tmp_path / "in.bin")
    assert await collect(storage.read("p/task_r/out.bin", start, length)) == data[start : start + length]


async def test_an_overwrite_replaces_the_object(storage: Storage, tmp_path: Path) -> None:
    write_random(tmp_path / "first", 150_000)
    second = write_random(tmp_path / "second", 1_234)
    await storage.put_file("p/task_o/out.bin", tmp_path / "first")
    await storage.put_file("p/task_o/out.bin", tmp_path / "second")
    assert await storage.size("p/task_o/out.bin") == len(second)
    assert await collect(storage.read("p/task_o/out.bin", 0, len(second))) == second


async def test_invalid_keys_are_refused(storage: Storage, tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    for key in ("../escape", "p//double", "p/./dot"):
        with pytest.raises(InvalidRequest):
            await storage.put_file(key, tmp_path / "f")


@pytest.mark.parametrize(
    ("backend", "size", "bound"),
    [("s3", 3 * MIN_PART_BYTES + 1, 2.5 * MIN_PART_BYTES), ("nats", 8 * 1024**2, 1024**2)],
)
async def test_large_files_move_with_bounded_memory(
    backend: str, size: int, bound: float, tmp_path: Path, seaweed: SeaweedS3, nats_url: str
) -> None:
    """More than one S3 part / many object-store chunks; the peak of Python allocations stays
    near one part or chunk, far below the file, on the way up and on the way down."""
    data = write_random(tmp_path / "large.bin", size)
    digest = hashlib.sha256(data).digest()
    del data
    async with open_storage(settings_for(backend, tmp_path, seaweed, nats_url)) as storage:
        tracemalloc.start()
        try:
            assert await storage.put_file("p/task_l/large.bin", tmp_path / "large.bin") == size
            _, up_peak = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            assert await storage.fetch_file("p/task_l/large.bin", tmp_path / "back.bin") == size
            _, down_peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert hashlib.sha256((tmp_path / "back.bin").read_bytes()).digest() == digest
        assert up_peak < bound and down_peak < bound, (up_peak, down_peak, size)


async def test_s3_uploads_large_files_in_parts(tmp_path: Path, seaweed: SeaweedS3) -> None:
    """A multipart object's ETag ends in ``-<parts>``: proof the upload went up in parts."""
    write_random(tmp_path / "large.bin", 2 * MIN_PART_BYTES + 10)
    storage = open_storage(settings_for("s3", tmp_path, seaweed, None))
    assert isinstance(storage, S3Storage)
    async with storage:
        await storage.put_file("p/task_m/large.bin", tmp_path / "large.bin")
        head = await storage.client.head_object(Bucket=seaweed.bucket, Key="p/task_m/large.bin")
        assert head["ETag"].strip('"').endswith("-3")
        uploads = await storage.client.list_multipart_uploads(Bucket=seaweed.bucket)
        assert not uploads.get("Uploads")  # nothing left half-done


async def test_s3_creates_its_bucket_once(tmp_path: Path, seaweed: SeaweedS3) -> None:
    settings = settings_for("s3", tmp_path, seaweed, None, s3_bucket="fresh-bucket")
    async with open_storage(settings), open_storage(settings) as storage:  # the second finds it
        assert isinstance(storage, S3Storage)
        await storage.client.head_bucket(Bucket="fresh-bucket")


async def test_s3_presigned_links_serve_the_file_and_ranges(tmp_path: Path, seaweed: SeaweedS3) -> None:
    data = write_random(tmp_path / "clip.mp4", 50_000)
    settings = settings_for("s3", tmp_path, seaweed, None, s3_presigned_downloads=True)
    async with open_storage(settings) as storage:
        await storage.put_file("p/task_s/clip.mp4", tmp_path / "clip.mp4")
        url = await storage.download_url("p/task_s/clip.mp4", expires_in=60)
    assert url is not None and "X-Amz-Signature" in url
    async with httpx.AsyncClient(timeout=10) as client:
        whole = await client.get(url)
        part = await client.get(url, headers={"Range": "bytes=100-199"})
        tampered = await client.get(url.replace("clip.mp4", "clip.mp3"))
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["content-type"] == "video/mp4"
    assert part.status_code == 206 and part.content == data[100:200]
    assert tampered.status_code == 403


async def test_without_presigning_links_stay_with_the_gateway(storage: Storage) -> None:
    assert await storage.download_url("p/task_s/clip.mp4", expires_in=60) is None


async def test_nats_objects_are_the_object_store_format(tmp_path: Path, nats_url: str) -> None:
    """What the backend writes, nats-py's own ObjectStore reads (and so ``nats object get``), and
    the other way round: the bucket is a standard object store, with its configured replicas."""
    data = write_random(tmp_path / "in.bin", 300_000)
    async with open_storage(settings_for("nats", tmp_path, None, nats_url)) as storage:
        await storage.put_file("p/task_n/out.bin", tmp_path / "in.bin")
        nc = await nats.connect(nats_url, connect_timeout=5)
        try:
            js = nc.jetstream(timeout=5)
            store = await js.object_store("transmute")
            assert (await store.get("p/task_n/out.bin")).data == data
            await store.put("p/task_n/theirs.bin", data[:1000])
            info = await js.stream_info("OBJ_transmute")
            assert info.config.num_replicas == 1
        finally:
            await nc.close()
        assert await collect(storage.read("p/task_n/theirs.bin", 0, 1000)) == data[:1000]


async def test_nats_delete_frees_the_chunks(tmp_path: Path, nats_url: str) -> None:
    write_random(tmp_path / "in.bin", 3 * NATS_CHUNK)
    async with open_storage(settings_for("nats", tmp_path, None, nats_url)) as storage:
        nc = await nats.connect(nats_url, connect_timeout=5)
        try:
            js = nc.jetstream(timeout=5)
            before = (await js.stream_info("OBJ_transmute")).state.bytes
            await storage.put_file("p/task_d/out.bin", tmp_path / "in.bin")
            await storage.put_file("p/task_d/out.bin", tmp_path / "in.bin")  # replaces, not adds
            stored = (await js.stream_info("OBJ_transmute")).state.bytes
            await storage.delete("p/task_d/out.bin")
            after = (await js.stream_info("OBJ_transmute")).state.bytes
        finally:
            await nc.close()
    assert 3 * NATS_CHUNK <= stored - before < 4 * NATS_CHUNK
    assert after - before < NATS_CHUNK


async def test_concurrent_puts_through_one_client(storage: Storage, tmp_path: Path) -> None:
    """A package uploads many files at once through the one per-process client."""
    files = {
        f"p/task_c/hls/seg{i}.m4s": write_random(tmp_path / f"seg{i}.m4s", 20_000 + i) for i in range(12)
    }
    sizes = await asyncio.gather(*(storage.put_file(key, tmp_path / key.rsplit("/", 1)[1]) for key in files))
    assert sizes == [len(data) for data in files.values()]
    for key, data in files.items():
        assert await collect(storage.read(key, 0, len(data))) == data


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-9", ByteRange(0, 10)),
        ("bytes=90-", ByteRange(90, 10)),
        ("bytes=-5", ByteRange(95, 5)),
        ("bytes=-500", ByteRange(0, 100)),
        ("bytes=50-5000", ByteRange(50, 50)),
        ("bytes=0-1,5-6", None),  # several ranges: the whole file
        ("items=0-9", None),
        ("bytes=9-0", None),
        ("bytes=a-b", None),
        ("bytes=-", None),
        ("bytes=\u00b2-", None),  # a Latin-1 superscript two: isdigit() but not a number here
        ("bytes=0-\u00b3", None),
        ("bytes=" + "9" * 5000 + "-", None),  # past int()'s digit limit
    ],
)
def test_range_headers(header: str | None, expected: ByteRange | None) -> None:
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=100-200", "bytes=-0"])
def test_ranges_past_the_end_are_unsatisfiable(header: str) -> None:
    with pytest.raises(Unsatisfiable):
        parse_range(header, 100)


def test_a_grant_says_whether_it_is_the_file_or_its_folder() -> None:
    expiry = 2_000_000_000
    folder = signing.signed_path("s", "p/t/hls/master.m3u8", expiry=expiry, prefix="p/t/hls").split("/")[3]
    single = signing.signed_path("s", "p/t/clip.mp4", expiry=expiry).split("/")[3]
    assert signing.granted("s", "get", expiry, folder, "p/t/hls/720p/seg1.m4s", now=0) == "p/t/hls/"
    assert signing.granted("s", "get", expiry, single, "p/t/clip.mp4", now=0) == "p/t/clip.mp4"
    assert signing.granted("s", "get", expiry, single, "p/t/other.mp4", now=0) is None
    assert signing.granted("s", "get", expiry, single, "p/t/clip.mp4", now=expiry + 1) is None


class FailingOn:
    """A real backend whose n-th put fails, to prove a half-stored package is deleted from it."""

    def __init__(self, storage: Storage, fail_at: int) -> None:
        self.storage = storage
        self.fail_at = fail_at
        self.puts = 0

    async def put_file(self, key: str, src: Path) -> int:
        self.puts += 1
        if self.puts == self.fail_at:
            raise OSError("disk gone")
        return await self.storage.put_file(key, src)

    async def delete(self, key: str) -> None:
        await self.storage.delete(key)


async def test_a_failed_package_leaves_nothing_in_the_backend(storage: Storage, tmp_path: Path) -> None:
    package = tmp_path / "hls"
    package.mkdir()
    for i in range(6):
        write_random(package / f"seg{i}.m4s", 5_000)
    (package / "master.m3u8").write_text("#EXTM3U\n")
    output = Output(path=package / "master.m3u8", name="hls", entry=tasks_pb2.FileEntry(), package=package)
    failing = FailingOn(storage, fail_at=5)
    with pytest.raises(OSError, match="disk gone"):
        await store_outputs(failing, "p/task_f", [output], cancel=asyncio.Event(), concurrency=1)  # type: ignore[arg-type]
    for name in ["master.m3u8", *(f"seg{i}.m4s" for i in range(6))]:
        with pytest.raises(NotFound):
            await storage.size(f"p/task_f/hls/{name}")
    stored = await store_outputs(storage, "p/task_f", [output], cancel=asyncio.Event(), concurrency=4)
    assert await storage.size(stored.entries[0].key) == len("#EXTM3U\n")


async def test_a_key_that_clashes_with_a_file_or_folder_is_refused_on_the_file_backend(
    tmp_path: Path,
) -> None:
    """``a`` and ``a/b`` cannot both be files in a directory: a 400 naming the key, not a 500."""
    storage = FileStorage(tmp_path / "storage")
    src = tmp_path / "src"
    src.write_bytes(b"x")
    await storage.put_file("p/a", src)
    with pytest.raises(InvalidRequest, match="clashes"):
        await storage.put_file("p/a/b", src)
    await storage.put_file("p/c/d", src)
    with pytest.raises(InvalidRequest, match="clashes"):
        await storage.put_stream("p/c", rechunk_source([b"y"]), max_bytes=10)


async def rechunk_source(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def test_a_read_is_of_the_version_it_opened(storage: Storage) -> None:
    """An overwrite between looking the object up and reading it (the gateway's size, then its
    bytes): the reader gets the version it opened whole where the backend keeps it (an open file),
    else NotFound; never the new version's bytes under the old one's size."""
    old, new = os.urandom(3 * NATS_CHUNK + 7), os.urandom(5 * NATS_CHUNK)
    key = "p/task_v/out.bin"
    await storage.put_stream(key, stream_of(old, NATS_CHUNK), max_bytes=len(old))
    version = await storage.open(key)
    try:
        await storage.put_stream(key, stream_of(new, NATS_CHUNK), max_bytes=len(new))
        assert version.size == len(old)
        if isinstance(storage, FileStorage):
            assert await collect(version.read(0, version.size)) == old
            assert await collect(version.read(NATS_CHUNK, 10)) == old[NATS_CHUNK : NATS_CHUNK + 10]
        else:  # the object store purged the old chunks; S3 (unversioned) answers If-Match with 412
            with pytest.raises(NotFound, match="replaced"):
                await collect(version.read(0, version.size))
    finally:
        await version.aclose()
    reopened = await storage.open(key)
    try:
        assert reopened.size == len(new) and await collect(reopened.read(0, reopened.size)) == new
    finally:
        await reopened.aclose()


async def test_an_overwrite_during_a_read_never_mixes_versions(storage: Storage) -> None:
    old, new = os.urandom(6 * NATS_CHUNK), os.urandom(6 * NATS_CHUNK)
    key = "p/task_w/out.bin"
    await storage.put_stream(key, stream_of(old, NATS_CHUNK), max_bytes=len(old))
    version = await storage.open(key)
    got = b""
    try:
        async for chunk in version.read(0, version.size):
            if not got:
                await storage.put_stream(key, stream_of(new, NATS_CHUNK), max_bytes=len(new))
            got += chunk
    except NotFound:
        assert not isinstance(storage, FileStorage), "an open file keeps the old version"
        assert old.startswith(got) and len(got) < len(old)  # stopped, with only old bytes
    else:
        assert got == old
    finally:
        await version.aclose()


async def put_interleaved(storage: Storage, keys: list[str], data: bytes, chunk: int) -> None:
    """Store ``data`` under every key at once, a chunk each in turn, so their chunks alternate in
    the stream (the object store's chunks of one object are then not contiguous)."""

    async def chunks() -> AsyncIterator[bytes]:
        for at in range(0, len(data), chunk):
            await asyncio.sleep(0)
            yield data[at : at + chunk]

    await asyncio.gather(*(storage.put_stream(key, chunks(), max_bytes=len(data)) for key in keys))


async def test_a_deep_nats_range_read_fetches_the_chunks_of_the_range(nats_url: str) -> None:
    """Bytes near the end of a 400-chunk object: what comes from the server is a few chunks (the
    probes that find the range's first chunk, and the chunk itself), not the 400 before it, whether
    the object's chunks are contiguous in the stream or interleaved with another object's."""
    chunk, count = 1024, 400
    data = os.urandom(chunk * count - 100)
    async with NatsStorage(nats_url, bucket="deep", replicas=1, chunk_bytes=chunk) as storage:
        await storage.put_stream("p/task_d/alone.bin", stream_of(data, 5000), max_bytes=len(data))
        await put_interleaved(storage, ["p/task_d/a.bin", "p/task_d/b.bin"], data, chunk)
        assert storage._nc is not None
        for key, most in [("p/task_d/alone.bin", 5), ("p/task_d/a.bin", 20), ("p/task_d/b.bin", 20)]:
            for start, length in [(len(data) - 2000, 1500), (chunk * 250 + 3, 10), (chunk * 399, 1)]:
                before = storage._nc.stats["in_bytes"]
                assert await collect(storage.read(key, start, length)) == data[start : start + length]
                received = storage._nc.stats["in_bytes"] - before
                assert received < (most + 2) * chunk, (key, start, received // chunk)


async def test_a_deep_range_of_another_clients_object_is_walked_to(tmp_path: Path, nats_url: str) -> None:
    """An object whose chunk sizes this backend did not choose (nats-py's own put) is read from its
    first chunk: right bytes, at the old cost."""
    data = os.urandom(400_000)
    async with open_storage(settings_for("nats", tmp_path, None, nats_url)) as storage:
        nc = await nats.connect(nats_url, connect_timeout=5)
        try:
            await (await nc.jetstream(timeout=5).object_store("transmute")).put("p/task_x/theirs.bin", data)
        finally:
            await nc.close()
        assert await collect(storage.read("p/task_x/theirs.bin", 300_000, 99)) == data[300_000:300_099]
