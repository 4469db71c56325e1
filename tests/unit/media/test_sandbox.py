"""The ffmpeg sandbox: a leased uid per task that cannot read storage or another task's work dir.

Real ffmpeg runs through the one runner, once as the task's uid and once (the control) as the
worker's own user, on an argv that opens a file it must not reach, as a parser bug might.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from taskkit.config import Settings
from taskkit.media import Sandbox, run_ffmpeg
from taskkit.media.ffmpeg import FfmpegError

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="switching ffmpeg's uid needs root")

FFMPEG = shutil.which("ffmpeg") or "ffmpeg"


@pytest.fixture
def work_root() -> Iterator[Path]:
    """A work root the leased uids can traverse, like the system temp dir (pytest's are 0700)."""
    root = Path(tempfile.mkdtemp(prefix="transmute-sandbox-test-"))
    root.chmod(0o711)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def private_file(work_root: Path) -> Path:
    """A media file in a 0700 directory owned by the worker's user, like the storage root."""
    private = work_root / "storage"
    private.mkdir(mode=0o700)
    path = private / "secret.wav"
    subprocess.run(
        [FFMPEG, "-loglevel", "error", "-f", "lavfi", "-i", "sine=duration=1", str(path)], check=True
    )
    return path


def _settings(work_root: Path, mode: str = "auto") -> Settings:
    return Settings(work_dir=work_root, ffmpeg_sandbox=mode)


def _copy_argv(src: Path, dst: Path) -> list[str]:
    return [FFMPEG, "-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-i", str(src), str(dst)]


async def test_a_leased_uid_owns_only_its_work_dir(work_root: Path) -> None:
    sandbox = Sandbox(_settings(work_root))
    await sandbox.check()
    assert sandbox.enabled
    first, second = work_root / "a", work_root / "b"
    first.mkdir()
    second.mkdir()
    with sandbox.lease(first) as one, sandbox.lease(second) as two:
        assert one is not None and two is not None and one.uid != two.uid
        info = first.stat()
        assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (one.uid, 0o700)
        assert one.uid >= 61184


async def test_ffmpeg_as_the_task_uid_cannot_read_storage(work_root: Path, private_file: Path) -> None:
    sandbox = Sandbox(_settings(work_root))
    await sandbox.check()
    workdir = work_root / "task"
    workdir.mkdir()
    with sandbox.lease(workdir) as identity:
        assert identity is not None
        with pytest.raises(FfmpegError, match="Permission denied"):
            await run_ffmpeg(
                _copy_argv(private_file, workdir / "out.wav"),
                duration=None, on_progress=None, timeout=30, cwd=workdir, identity=identity,
            )  # fmt: skip
    # The control: the same argv as the worker's own user reads it.
    await run_ffmpeg(
        _copy_argv(private_file, workdir / "out.wav"), duration=None, on_progress=None, timeout=30
    )
    assert (workdir / "out.wav").stat().st_size > 1000


async def test_ffmpeg_cannot_read_another_tasks_work_dir(work_root: Path, private_file: Path) -> None:
    sandbox = Sandbox(_settings(work_root))
    await sandbox.check()
    mine, theirs = work_root / "mine", work_root / "theirs"
    mine.mkdir()
    theirs.mkdir()
    with sandbox.lease(mine) as me, sandbox.lease(theirs):
        assert me is not None
        shutil.copy(private_file, theirs / "input")
        with pytest.raises(FfmpegError, match="Permission denied"):
            await run_ffmpeg(
                _copy_argv(theirs / "input", mine / "out.wav"),
                duration=None, on_progress=None, timeout=30, cwd=mine, identity=me,
            )  # fmt: skip
        # Its own input, written by the worker into its dir, it reads.
        shutil.copy(private_file, mine / "input")
        await run_ffmpeg(
            _copy_argv(mine / "input", mine / "out.wav"),
            duration=None, on_progress=None, timeout=30, cwd=mine, identity=me,
        )  # fmt: skip
        assert (mine / "out.wav").stat().st_uid == me.uid


async def test_off_means_no_uid(work_root: Path) -> None:
    sandbox = Sandbox(_settings(work_root, "off"))
    await sandbox.check()
    with sandbox.lease(work_root) as identity:
        assert identity is None


async def test_required_refuses_to_start_when_the_uid_cannot_reach_the_work_dir(tmp_path: Path) -> None:
    closed = tmp_path / "closed"  # under pytest's 0700 dirs: no other uid can traverse to it
    closed.mkdir()
    with pytest.raises(SystemExit, match="required but unavailable"):
        await Sandbox(_settings(closed, "required")).check()
    fallback = Sandbox(_settings(closed, "auto"))
    await fallback.check()
    assert not fallback.enabled


async def test_leases_are_exclusive_across_many_tasks(work_root: Path) -> None:
    sandbox = Sandbox(_settings(work_root))
    await sandbox.check()
    dirs = [work_root / f"t{i}" for i in range(20)]
    uids = []
    with contextlib.ExitStack() as stack:
        for path in dirs:
            path.mkdir()
            identity = stack.enter_context(sandbox.lease(path))
            assert identity is not None
            uids.append(identity.uid)
    assert len(set(uids)) == len(uids)
