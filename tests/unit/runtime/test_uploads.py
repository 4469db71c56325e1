"""Package outputs: stored all or nothing under deterministic keys, once per package, and
nothing left behind by a failure or a cancel.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import pytest
from transmute.tasks.v1 import tasks_pb2

from taskkit.errors import Cancelled, NotFound
from taskkit.runtime import Output
from taskkit.runtime.uploads import store_outputs
from taskkit.storage.local import FileStorage


def make_package(root: Path, files: int = 30, tag: str = "v1") -> tuple[Path, int]:
    """An HLS-like folder: master.m3u8 (and manifest.mpd) plus segments in nested folders."""
    root.mkdir(parents=True)
    (root / "master.m3u8").write_text(f"#EXTM3U {tag}\n")
    (root / "manifest.mpd").write_text(f"<MPD {tag}/>\n")
    for i in range(files - 2):
        segment = root / f"{i % 3 * 360 + 360}p" / "segs" / f"seg-{i:05d}.m4s"
        segment.parent.mkdir(parents=True, exist_ok=True)
        segment.write_bytes(f"{tag}:{i}:".encode() * (i + 1))
    return root, sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def package_output(package: Path, entry_point: str = "master.m3u8", name: str = "hls") -> Output:
    return Output(
        path=package / entry_point,
        name=name,
        entry=tasks_pb2.FileEntry(kind="video", type="application/x-mpegURL"),
        package=package,
    )


def stored_under(root: Path, prefix: str, *, staging: bool = False) -> list[str]:
    """The keys the storage holds under ``prefix`` (with ``staging``, also its hidden temp files)."""
    base = root / prefix
    files = [p for p in base.rglob("*") if p.is_file() and (staging or not p.name.startswith("."))]
    return sorted(p.relative_to(root).as_posix() for p in files)


class CountingStorage(FileStorage):
    """A real FileStorage that records how many puts run at once, and can fail the n-th put."""

    def __init__(self, root: Path, *, fail_at: int | None = None) -> None:
        super().__init__(root)
        self.fail_at = fail_at
        self.calls = 0
        self.active = 0
        self.max_active = 0

    async def put_file(self, key: str, src: Path) -> int:
        self.calls += 1
        if self.calls == self.fail_at:
            raise OSError("the disk is full")
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            await asyncio.sleep(0.005)  # long enough for the other puts to overlap
            return await super().put_file(key, src)
        finally:
            self.active -= 1


async def test_a_package_is_one_entry_with_every_file_stored(tmp_path: Path) -> None:
    package, total = make_package(tmp_path / "out")
    storage = CountingStorage(tmp_path / "storage")
    stored = await store_outputs(
        storage, "p/task_1", [package_output(package)], cancel=asyncio.Event(), concurrency=3
    )
    [entry] = stored.entries
    assert entry.key == "p/task_1/hls/master.m3u8" and entry.folder == "p/task_1/hls"
    assert entry.filesize == total
    files = sorted(p.relative_to(package).as_posix() for p in package.rglob("*") if p.is_file())
    assert len(files) == 30
    assert stored_under(tmp_path / "storage", "p/task_1") == [f"p/task_1/hls/{f}" for f in files]
    for f in files:
        assert storage.local_path(f"p/task_1/hls/{f}").read_bytes() == (package / f).read_bytes()
    assert storage.max_active == 3, "uploads should run concurrently, never more than the limit"


async def test_two_entry_points_of_one_package_store_it_once(tmp_path: Path) -> None:
    package, total = make_package(tmp_path / "cmaf")
    storage = CountingStorage(tmp_path / "storage")
    outputs = [
        package_output(package, "master.m3u8", "cmaf"),
        package_output(package, "manifest.mpd", "cmaf"),
    ]
    stored = await store_outputs(storage, "p/task_1", outputs, cancel=asyncio.Event(), concurrency=4)
    assert [(e.key, e.folder, e.filesize) for e in stored.entries] == [
        ("p/task_1/cmaf/master.m3u8", "p/task_1/cmaf", total),
        ("p/task_1/cmaf/manifest.mpd", "p/task_1/cmaf", total),
    ]
    assert storage.calls == 30 and len(stored.keys) == 30


async def test_a_failure_midway_deletes_everything_stored(tmp_path: Path) -> None:
    package, _ = make_package(tmp_path / "out")
    plain = tmp_path / "poster.png"
    plain.write_bytes(b"png")
    outputs = [
        Output(path=plain, name="poster.png", entry=tasks_pb2.FileEntry(kind="image")),
        package_output(package),
    ]
    storage = CountingStorage(tmp_path / "storage", fail_at=10)
    with pytest.raises(OSError, match="disk is full"):
        await store_outputs(storage, "p/task_1", outputs, cancel=asyncio.Event(), concurrency=4)
    assert storage.calls >= 10
    assert stored_under(tmp_path / "storage", "p/task_1") == []
    for key in ("p/task_1/poster.png", "p/task_1/hls/master.m3u8"):
        with pytest.raises(NotFound):
            storage.local_path(key)


async def test_a_cancelled_put_leaves_no_staging_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A put cancelled mid-copy must not litter storage: the copy thread runs on after the cancel."""
    real_copy = shutil.copyfile

    def slow_copy(src: Path, dst: Path) -> object:
        time.sleep(0.2)  # the copy thread is busy when the cancel arrives
        return real_copy(src, dst)

    monkeypatch.setattr(shutil, "copyfile", slow_copy)
    src = tmp_path / "seg.m4s"
    src.write_bytes(b"x" * 1000)
    storage = FileStorage(tmp_path / "storage")
    put = asyncio.create_task(storage.put_file("p/task_1/hls/seg.m4s", src))
    await asyncio.sleep(0.05)
    put.cancel()
    with pytest.raises(asyncio.CancelledError):
        await put
    await asyncio.sleep(0.4)  # the orphaned thread finishes its copy
    assert stored_under(tmp_path / "storage", "p/task_1", staging=True) == []


async def test_a_cancelled_task_stores_nothing(tmp_path: Path) -> None:
    package, _ = make_package(tmp_path / "out")
    storage = CountingStorage(tmp_path / "storage")
    cancel = asyncio.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        await store_outputs(storage, "p/task_1", [package_output(package)], cancel=cancel, concurrency=4)
    assert storage.calls == 0 and stored_under(tmp_path / "storage", "p/task_1") == []


async def test_a_redo_overwrites_the_same_keys(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path / "storage")
    first, _ = make_package(tmp_path / "first", tag="first")
    second, total = make_package(tmp_path / "second", tag="second")
    once = await store_outputs(
        storage, "p/task_1", [package_output(first)], cancel=asyncio.Event(), concurrency=4
    )
    again = await store_outputs(
        storage, "p/task_1", [package_output(second)], cancel=asyncio.Event(), concurrency=4
    )
    assert sorted(once.keys) == sorted(again.keys) and again.entries[0].filesize == total
    assert len(stored_under(tmp_path / "storage", "p/task_1")) == 30
    for key in again.keys:
        relative = key.removeprefix("p/task_1/hls/")
        assert storage.local_path(key).read_bytes() == (second / relative).read_bytes()
    assert storage.local_path("p/task_1/hls/master.m3u8").read_text() == "#EXTM3U second\n"
