"""The house keeps its shape: taskkit's rooms stand in layers, each importing only from the rooms
below it, with no import circle anywhere in the shipped code, and no folder of more than 15 modules.

The layers, ground first (``docs/architecture.md``, "Where things are"):

    config errors ids logs fetch   the ground: settings, the error vocabulary, ids, the safe fetcher
    media                          ffmpeg, probe, sandbox, geometry, quality, frame selection
    options                        option parsers (output geometry comes from media)
    records                        JetStream: the store, index, outbox, idempotency, create protocol
    storage                        object storage and signed links (the nats backend rides on records)
    rpc                            gRPC clients, status codes, call metadata
    runtime                        kinds, families, the worker, task context, uploads, child tasks
    api                            the gRPC servers: create glue, the Tasks API
    service                        composition: one process's start-up order

Imports are read with ``ast`` from the source (``TYPE_CHECKING`` imports included: a type is an
arrow too), so this test fails on the commit that adds an arrow running up or closing a circle.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ("taskkit", "gateway", "media_service", "tracks_service", "intelligence_service", "stack", "bench")
LAYERS = (
    ("config", "errors", "ids", "logs", "fetch"),
    ("media",),
    ("options",),
    ("records",),
    ("storage",),
    ("rpc",),
    ("runtime",),
    ("api",),
    ("service",),
)
MAX_MODULES_PER_FOLDER = 15


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for top in SHIPPED for path in (ROOT / top).rglob("*.py")}


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The project modules ``path`` imports (``from a.b import c`` is ``a.b.c`` when that is a
    module, else ``a.b``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                target = f"{node.module}.{alias.name}"
                found.add(target if target in known else node.module)
    return {name for name in found if name in known}


def layer_of(module: str) -> int | None:
    """The layer of a taskkit module (its room: ``taskkit.records.store`` → ``records``)."""
    parts = module.split(".")
    if parts[0] != "taskkit" or len(parts) < 2:
        return None
    return next(i for i, rooms in enumerate(LAYERS) if parts[1] in rooms)


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(path, set(known)) - {name} for name, path in known.items()}


def circles(arrows: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), each sorted.
    A package's face importing its own modules is not an arrow of the house (it hands names on)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in arrows.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(arrows):
        if node not in index:
            visit(node)
    return found


def without_faces(arrows: dict[str, set[str]]) -> dict[str, set[str]]:
    """Arrows with each face's own hand-ons removed, and an import of a face read as an import of
    the modules it hands on (what the importer really depends on)."""
    faces = {name for name in arrows if (ROOT / name.replace(".", "/") / "__init__.py").exists()}
    inner = {face: {t for t in arrows[face] if t.startswith(face + ".")} for face in faces}
    return {
        name: {target for t in targets for target in (inner.get(t) or {t}) if target != name}
        for name, targets in arrows.items()
        if name not in faces
    }


def test_no_import_circle_anywhere() -> None:
    assert circles(without_faces(graph())) == []


def test_taskkit_rooms_import_only_from_rooms_below_them() -> None:
    upward = []
    for source, targets in graph().items():
        here = layer_of(source)
        if here is None:
            continue
        for target in targets:
            there = layer_of(target)
            if there is not None and there > here:
                upward.append(f"{source} -> {target}")
    assert upward == []


def test_every_taskkit_room_has_a_layer() -> None:
    rooms = {name.split(".")[1] for name in modules() if name.startswith("taskkit.")}
    assert rooms <= {room for layer in LAYERS for room in layer}


def test_no_folder_holds_more_than_fifteen_modules() -> None:
    counts: dict[Path, int] = defaultdict(int)
    for path in modules().values():
        if path.name != "__init__.py":
            counts[path.parent.relative_to(ROOT)] += 1
    crowded = {str(folder): n for folder, n in counts.items() if n > MAX_MODULES_PER_FOLDER}
    assert crowded == {}


@pytest.mark.parametrize(
    ("arrows", "expected"),
    [
        ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ],
)
def test_the_circle_finder_finds_circles(arrows: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert circles(arrows) == expected


def test_an_upward_arrow_would_be_caught() -> None:
    assert layer_of("taskkit.records.store") is not None
    assert layer_of("taskkit.records.store") < layer_of("taskkit.runtime.worker")  # type: ignore[operator]
