"""Reading and writing in folders the sandboxed ffmpeg could write to, without following what it
left there.

The worker is root; ffmpeg runs as the task's own uid (``taskkit.media.sandbox``) and owns its output
folders. A compromised ffmpeg could leave a symbolic link where the worker later writes a playlist
(``master.m3u8`` → ``/etc/passwd``), reads an MPD, or uploads a segment (``seg1.m4s`` → another
task's files): the worker would then write, read or publish the link's target with root's rights.
So every such access opens with ``O_NOFOLLOW``, writes replace whatever stood at the name, and
uploads take regular files only (``taskkit.runtime.uploads``).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from taskkit.errors import InputError


def _refuse(path: Path) -> InputError:
    return InputError(f"the encode left something other than a file at {path.name}")


def check_regular(path: Path) -> None:
    """InputError unless ``path`` itself (not a link's target) is a regular file."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        raise InputError(f"the encode did not write {path.name}") from None
    if not stat.S_ISREG(mode):
        raise _refuse(path)


def read_bytes(path: Path) -> bytes:
    """A file ffmpeg wrote, never through a link."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise InputError(f"the encode did not write {path.name}") from None
    except OSError:  # ELOOP: a link
        raise _refuse(path) from None
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise _refuse(path)
        return file.read()


def read_text(path: Path) -> str:
    return read_bytes(path).decode("utf-8")


def write_text(path: Path, text: str) -> None:
    """Write ``path`` anew: whatever stood at the name (a link ffmpeg left) is removed, not
    followed, and the new file is created exclusively, so a link put back meanwhile fails it."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)
