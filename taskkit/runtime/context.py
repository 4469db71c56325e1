"""What a handler gets (``TaskContext``) and the helpers that run on it: the task, its options and
probed input, a work dir, progress, cancel, the deadline, storage, the sandbox identity and the
family's per-process resources, with ffmpeg wired to all of them.

A handler never builds these itself; the worker makes one per task (``taskkit.runtime.worker``).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transmute.tasks.v1 import tasks_pb2

from taskkit.config import Settings
from taskkit.media.ffmpeg import run_ffmpeg
from taskkit.media.probe import ProbeResult
from taskkit.media.sandbox import Identity
from taskkit.media.scenes import parse_times, scene_cuts_argv
from taskkit.runtime.inputs import fetch_input
from taskkit.runtime.progress import Progress
from taskkit.storage.base import Storage


@dataclass
class TaskContext:
    """What a handler gets: the task, its validated options and probed input, a work dir that is
    removed afterwards, progress, cancel, the deadline, storage (for further inputs), the sandbox
    identity and the family's per-process resources."""

    task: tasks_pb2.Task
    options: Any
    input_path: Path
    probe: ProbeResult
    workdir: Path
    settings: Settings
    cancel: asyncio.Event
    progress: Progress
    deadline: float  # time.monotonic() by which the whole handler must be done
    storage: Storage
    identity: Identity | None = None
    resources: Mapping[str, Any] = field(default_factory=dict)

    def remaining(self) -> float:
        """Seconds left of the kind's budget."""
        return max(self.deadline - time.monotonic(), 0.0)

    def output_dir(self, name: str) -> Path:
        """A new folder in the work dir that ffmpeg may write to (owned by the sandbox uid)."""
        path = self.workdir / name
        path.mkdir(mode=0o700)
        if self.identity is not None:
            os.chown(path, self.identity.uid, self.identity.gid)
        return path

    async def fetch(self, url: str, dest: Path) -> int:
        """Fetch a further input the options name (a subtitles file, a watermark) the way the task's
        own input is fetched: our own signed links from storage, anything else with the safe fetcher."""
        return await fetch_input(url, dest, settings=self.settings, storage=self.storage)

    async def report(self, percent: int) -> None:
        """Progress of a handler with a single step."""
        await self.progress.step()(percent)

    async def ffmpeg(self, argv: list[str], *, duration: float | None, step: str | None = None) -> None:
        """Run one ffmpeg argv with progress (of ``step``, if the handler planned steps), cancel,
        what is left of the task's budget and the sandbox wired in."""
        await run_ffmpeg(
            argv,
            duration=duration,
            on_progress=self.progress.step(step) if step else self.report,
            timeout=self.remaining(),
            cancel=self.cancel,
            cwd=self.workdir,
            identity=self.identity,
        )


async def scene_cuts(ctx: TaskContext, step: str) -> list[float]:
    """Scene cut times of the input's video (none for audio)."""
    if ctx.probe.video is None or ctx.probe.is_image:
        return []
    argv = scene_cuts_argv(ctx.input_path, ctx.probe, "cuts.txt", ffmpeg=ctx.settings.ffmpeg_path)
    await ctx.ffmpeg(argv, duration=ctx.probe.duration, step=step)
    return parse_times((ctx.workdir / "cuts.txt").read_text())
