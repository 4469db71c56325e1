"""What the root worker does in folders the sandboxed ffmpeg could write to: links ffmpeg might
leave there are never followed, written through, read or uploaded."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from transmute.tasks.v1 import tasks_pb2

from taskkit.errors import InputError
from taskkit.media import sandbox_files
from taskkit.runtime import Output
from taskkit.runtime.uploads import store_outputs
from taskkit.storage.local import FileStorage


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A file the worker can read and ffmpeg's uid could not: what a planted link points at."""
    path = tmp_path / "secret"
    path.write_text("root only")
    return path


def test_writing_replaces_a_link_and_leaves_its_target_alone(tmp_path: Path, secret: Path) -> None:
    playlist = tmp_path / "master.m3u8"
    playlist.symlink_to(secret)
    sandbox_files.write_text(playlist, "#EXTM3U\n")
    assert secret.read_text() == "root only"
    assert not playlist.is_symlink() and playlist.read_text() == "#EXTM3U\n"


def test_reading_refuses_a_link(tmp_path: Path, secret: Path) -> None:
    mpd = tmp_path / "manifest.mpd"
    mpd.symlink_to(secret)
    with pytest.raises(InputError, match=r"something other than a file at manifest\.mpd"):
        sandbox_files.read_text(mpd)
    (tmp_path / "ok.mpd").write_text("<MPD/>")
    assert sandbox_files.read_text(tmp_path / "ok.mpd") == "<MPD/>"


def _entry() -> tasks_pb2.FileEntry:
    return tasks_pb2.FileEntry(kind="source", type="application/vnd.apple.mpegurl")


@pytest.mark.parametrize("planted", ["file", "folder"])
def test_a_package_with_a_link_in_it_is_refused_and_nothing_is_stored(
    tmp_path: Path, secret: Path, planted: str
) -> None:
    package = tmp_path / "package"
    package.mkdir()
    (package / "master.m3u8").write_text("#EXTM3U\n")
    (package / "seg0.m4s").write_bytes(b"\0" * 10)
    if planted == "file":
        (package / "seg1.m4s").symlink_to(secret)
    else:
        os.symlink(secret.parent, package / "more")
    storage = FileStorage(tmp_path / "storage")
    output = Output(path=package / "master.m3u8", name="hls", entry=_entry(), package=package)
    with pytest.raises(InputError, match="something other than a file"):
        asyncio.run(store_outputs(storage, "p/task_1", [output], cancel=asyncio.Event(), concurrency=2))
    assert not any(path.is_file() for path in (tmp_path / "storage").rglob("*"))


def test_a_plain_output_that_is_a_link_is_refused(tmp_path: Path, secret: Path) -> None:
    video = tmp_path / "video.mp4"
    video.symlink_to(secret)
    storage = FileStorage(tmp_path / "storage")
    output = Output(path=video, name="video.mp4", entry=_entry())
    with pytest.raises(InputError, match=r"something other than a file at video\.mp4"):
        asyncio.run(store_outputs(storage, "p/task_1", [output], cancel=asyncio.Event(), concurrency=2))
