"""Defence in depth around ffmpeg: every task's ffmpeg runs as a uid of its own.

The demuxer allowlist (``taskkit/media/demuxers.py``) is what keeps a crafted input from making ffmpeg
read other files. This module is for the day a parser bug gets past it: ffmpeg runs as an
unprivileged uid leased for the task, no two running tasks on a host share one, its work dir is
the only directory it owns (mode 0700), and the storage root and every other task's work dir are
closed to it. The worker stays root and does the privileged parts (reading its own files, storage).

How: util-linux's ``setpriv`` (already the runner's wrapper for ``--pdeathsig``) drops to the
leased uid/gid with no supplementary groups and ``no_new_privs``. This needs root (CAP_SETUID):
Debian as root and a container running as root both have it. Uids come from a range that names no
account (systemd's dynamic-user range by default, from 61184), leased with ``flock`` on one lock
file per uid in the system temp dir, so concurrent worker processes on a host never share a uid
and a dead process's leases free themselves.

Where switching is not possible (not root, no setpriv, a work root the uid cannot reach) the
worker logs why once at start and ffmpeg runs as the worker's own user, unless the setting says
``required``, which makes the worker refuse to start.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import random
import shutil
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from taskkit.config import Settings
from taskkit.errors import TransientError

log = logging.getLogger(__name__)

MODES = ("auto", "required", "off")
# One lock file per uid, shared by every worker process on the host (the system temp dir, which
# every process on a host agrees on, whatever its TRANSMUTE_WORK_DIR).
_LOCK_DIR = Path(tempfile.gettempdir()) / "transmute-sandbox-uids"
_CHECK_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Identity:
    """The unprivileged uid/gid one task's ffmpeg runs as."""

    uid: int
    gid: int

    def setpriv_args(self) -> list[str]:
        """``setpriv`` options that switch to this identity for good."""
        return ["--reuid", str(self.uid), "--regid", str(self.gid), "--clear-groups", "--no-new-privs"]


class Sandbox:
    """Leases a uid per task and prepares the task's work dir for it."""

    def __init__(self, settings: Settings) -> None:
        if settings.ffmpeg_sandbox not in MODES:
            allowed = ", ".join(MODES)
            raise SystemExit(
                f"TRANSMUTE_FFMPEG_SANDBOX must be one of {allowed} (got {settings.ffmpeg_sandbox!r})"
            )
        self._mode = settings.ffmpeg_sandbox
        self._base = settings.sandbox_uid_base
        self._count = settings.sandbox_uid_count
        self._work_root = Path(settings.work_dir or tempfile.gettempdir())
        self._locks = _LOCK_DIR
        self.enabled = False

    async def check(self) -> None:
        """Decide once, at worker start, whether ffmpeg can run under a leased uid."""
        if self._mode == "off":
            log.warning(
                "ffmpeg sandbox is off (TRANSMUTE_FFMPEG_SANDBOX=off): ffmpeg runs as the worker's user"
            )
            return
        reason = await self._unavailable_reason()
        if reason is None:
            self.enabled = True
            log.info("ffmpeg runs under a per-task uid", extra={"uid_base": self._base, "uids": self._count})
            return
        if self._mode == "required":
            raise SystemExit(f"the ffmpeg sandbox is required but unavailable: {reason}")
        log.warning(
            "ffmpeg sandbox unavailable; ffmpeg runs as the worker's user (the demuxer allowlist holds)",
            extra={"reason": reason},
        )

    async def _unavailable_reason(self) -> str | None:
        if os.geteuid() != 0:
            return "the worker is not running as root, so it cannot switch ffmpeg to another uid"
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            return "setpriv (util-linux) is not installed"
        self._locks.mkdir(mode=0o700, exist_ok=True)
        owner = self._locks.lstat()
        if owner.st_uid != 0 or not stat.S_ISDIR(owner.st_mode) or owner.st_mode & 0o077:
            return f"{self._locks} is not a directory that only root can write"
        test_bin = shutil.which("test") or "/usr/bin/test"
        probe_dir = Path(tempfile.mkdtemp(dir=self._work_root))
        try:
            with self._lease_uid(probe_dir) as identity:
                proc = await asyncio.create_subprocess_exec(
                    *[setpriv, *identity.setpriv_args(), "--", test_bin, "-w", str(probe_dir)],
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.PIPE,
                )
                _, stderr = await asyncio.wait_for(proc.communicate(), _CHECK_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            return f"setpriv could not be run ({exc!r})"
        finally:
            shutil.rmtree(probe_dir, ignore_errors=True)
        if proc.returncode != 0:
            detail = stderr.decode(errors="replace").strip()
            return (
                detail
                or f"uid {identity.uid} cannot reach the work dir {self._work_root}; make its parents o+x"
            )
        return None

    @contextlib.contextmanager
    def lease(self, workdir: Path) -> Iterator[Identity | None]:
        """The uid one task's ffmpeg runs as, owning ``workdir``; None when the sandbox is not in use."""
        if not self.enabled:
            yield None
            return
        with self._lease_uid(workdir) as identity:
            yield identity

    @contextlib.contextmanager
    def _lease_uid(self, workdir: Path) -> Iterator[Identity]:
        """Lease a free uid (an exclusive ``flock`` on its lock file, so it ends with the process
        too) and give it ``workdir`` with mode 0700."""
        offset = random.randrange(self._count)
        for step in range(self._count):
            uid = self._base + (offset + step) % self._count
            fd = os.open(self._locks / str(uid), os.O_CREAT | os.O_RDWR, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            try:
                os.chown(workdir, uid, uid)
                os.chmod(workdir, 0o700)
                yield Identity(uid=uid, gid=uid)
            finally:
                os.close(fd)  # releases the lease
            return
        raise TransientError(f"all {self._count} sandbox uids are in use on this host")
