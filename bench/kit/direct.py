"""The baselines the API is measured against: ffmpeg argvs run directly, timed."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path


def timed_argvs(argvs: list[list[str]], out: Path) -> float:
    """Run ffmpeg ``argvs`` one after another with their outputs under a fresh ``out`` (each
    argv's output folder made first); return the wall seconds."""
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    for argv in argvs:
        Path(argv[-1]).parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, check=True)
    return time.perf_counter() - started
