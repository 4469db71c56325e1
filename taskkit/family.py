"""What a family service declares to the runtime: its kinds, their handlers and budgets, and the
resources its worker processes open once (a model, a client, a pool).

Adding a kind is one ``Kind`` in the family's list; adding a family is one ``Family`` and a
``__main__`` that calls ``taskkit.service.main(FAMILY)`` (docs/architecture.md, "How to add a kind").
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import grpc
from transmute.tasks.v1 import tasks_pb2

from taskkit.config import Settings
from taskkit.ffmpeg import run_ffmpeg
from taskkit.inputs import fetch_input
from taskkit.outcome import Outcome
from taskkit.probe import ProbeResult
from taskkit.progress import Progress
from taskkit.sandbox import Identity
from taskkit.storage import Storage


class Options(Protocol):
    """A kind's validated options: the parser's result, echoed in the record by ``to_dict()``."""

    def to_dict(self) -> dict[str, Any]: ...


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


Handler = Callable[[TaskContext], Awaitable[Outcome]]
Parser = Callable[[Mapping[str, Any]], Options]
ResourceFactory = Callable[[Settings], AbstractAsyncContextManager[Any]]


@dataclass(frozen=True)
class Kind:
    """One task kind: its option parser (the one place its rules live), handler and time budget."""

    name: str
    parse: Parser
    handler: Handler
    timeout_seconds: float = 3_600.0  # the whole handler; TRANSMUTE_KIND_TIMEOUTS overrides it
    resources: tuple[str, ...] = ()  # the family resources its handler uses (opened only if needed)


@dataclass(frozen=True)
class Family:
    """A family service: its gRPC service, the servicer built over the create helper, its kinds,
    and resources opened once per worker process before it reports SERVING or pulls work."""

    name: str
    service_name: str
    servicer: Callable[[Any], object]  # (CreateHelper) -> the family's servicer
    add_servicer: Callable[[Any, grpc.aio.Server], None]  # the generated add_*Servicer_to_server
    kinds: tuple[Kind, ...]
    resources: Mapping[str, ResourceFactory] = field(default_factory=dict)

    def kind(self, name: str) -> Kind:
        for kind in self.kinds:
            if kind.name == name:
                return kind
        raise KeyError(name)

    def resources_for(self, kinds: tuple[Kind, ...]) -> dict[str, ResourceFactory]:
        """The resources the given kinds use, so a worker running only ``nsfw`` never loads
        Whisper; a kind naming a resource the family does not declare is a programming error."""
        names = {name for kind in kinds for name in kind.resources}
        missing = names - set(self.resources)
        if missing:
            raise KeyError(f"kinds of {self.name} use undeclared resources: {', '.join(sorted(missing))}")
        return {name: factory for name, factory in self.resources.items() if name in names}

    def selected(self, settings: Settings) -> tuple[Kind, ...]:
        """The kinds this process's worker runs: ``TRANSMUTE_KINDS``, default all of them."""
        if not settings.kinds:
            return self.kinds
        names = [name.strip() for name in settings.kinds.split(",") if name.strip()]
        known = {kind.name for kind in self.kinds}
        unknown = [name for name in names if name not in known]
        if unknown:
            raise SystemExit(
                f"TRANSMUTE_KINDS names kinds the {self.name} family does not have: {', '.join(unknown)} "
                f"(it has {', '.join(sorted(known))})"
            )
        return tuple(kind for kind in self.kinds if kind.name in names)


def budget(kind: Kind, settings: Settings) -> float:
    """The whole-handler wall-time budget of ``kind`` in seconds."""
    return float(settings.kind_timeouts.get(kind.name, kind.timeout_seconds))
