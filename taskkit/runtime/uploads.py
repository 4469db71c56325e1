"""Storing a task's outputs: plain files and whole packages, all or nothing.

A package's files are uploaded concurrently (``upload_concurrency`` at once). Keys are
deterministic (``<project>/<task>/<name>[/<file in the package>]``), so a redo overwrites what an
earlier attempt stored; if storing fails or the task is cancelled midway, every key stored so far is
deleted, so no partial package is ever visible.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from transmute.tasks.v1 import tasks_pb2

from taskkit.errors import Cancelled
from taskkit.media.sandbox_files import check_regular
from taskkit.runtime.outcome import Output
from taskkit.storage.base import Storage


@dataclass
class Stored:
    """The record entries of what was stored, and every key written (to delete them if need be)."""

    entries: list[tasks_pb2.FileEntry] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)


async def store_outputs(
    storage: Storage, prefix: str, outputs: Iterable[Output], *, cancel: asyncio.Event, concurrency: int
) -> Stored:
    """Store every output under ``prefix`` (``<project>/<task>``); delete them all on any failure."""
    stored = Stored()
    packages: dict[tuple[str, Path], int] = {}  # a folder two entry points share is stored once
    try:
        for output in outputs:
            if cancel.is_set():
                raise Cancelled("the task was cancelled")
            check_regular(output.path)  # what ffmpeg wrote, never a link it left (sandbox_files)
            if output.package is None:
                key = f"{prefix}/{output.name}"
                stored.keys.append(key)
                output.entry.filesize = await storage.put_file(key, output.path)
            else:
                folder = f"{prefix}/{output.name}"
                if (folder, output.package) not in packages:
                    size = await _put_package(storage, folder, output.package, stored, concurrency)
                    packages[folder, output.package] = size
                if not output.entry.filesize:  # the whole package, unless the handler sized its file
                    output.entry.filesize = packages[folder, output.package]
                output.entry.folder = folder
                key = f"{folder}/{output.path.relative_to(output.package).as_posix()}"
            output.entry.key = key
            stored.entries.append(output.entry)
    except BaseException:
        await asyncio.shield(discard(storage, stored.keys))
        raise
    return stored


async def _put_package(storage: Storage, folder: str, root: Path, stored: Stored, concurrency: int) -> int:
    """Upload every file under ``root``; return the package's total size in bytes."""
    files = sorted(path for path in root.rglob("*") if not path.is_dir() or path.is_symlink())
    for path in files:
        check_regular(path)
    limit = asyncio.Semaphore(max(concurrency, 1))

    async def put(path: Path) -> int:
        key = f"{folder}/{path.relative_to(root).as_posix()}"
        async with limit:
            stored.keys.append(key)  # before the write: a half-written key is deleted too
            return await storage.put_file(key, path)

    try:
        async with asyncio.TaskGroup() as group:  # one failure cancels the rest before we return
            puts = [group.create_task(put(path)) for path in files]
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return sum(put.result() for put in puts)


async def discard(storage: Storage, keys: Iterable[str]) -> None:
    """Delete ``keys``, best effort (a key that is already gone is fine)."""
    for key in keys:
        with contextlib.suppress(Exception):
            await storage.delete(key)
