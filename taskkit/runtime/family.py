"""What a family service declares to the runtime: its kinds, their handlers and budgets, and the
resources its worker processes open once (a model, a client, a pool).

Adding a kind is one ``Kind`` in the family's list; adding a family is one ``Family`` and a
``__main__`` that calls ``taskkit.service.main(FAMILY)`` (docs/architecture.md, "How to add a kind").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc

from taskkit.config import Settings
from taskkit.runtime.context import TaskContext
from taskkit.runtime.outcome import Outcome


class Options(Protocol):
    """A kind's validated options: the parser's result, echoed in the record by ``to_dict()``."""

    def to_dict(self) -> dict[str, Any]: ...


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
