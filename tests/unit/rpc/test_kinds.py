"""A kind is spelt in three places only: its messages and Create RPC in its family's proto, its
handler, and its ``Kind(...)`` line in the family's ``KINDS``. Everything else is derived from the
protos (``taskkit.rpc.KINDS``), and these tests fail when some other place lists kinds again."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from intelligence_service.family import FAMILY as INTELLIGENCE
from media_service.family import FAMILY as MEDIA
from taskkit.rpc import FAMILY_SERVICES, KINDS, kind_of_rpc, kinds_of, rpc_name
from tracks_service.family import FAMILY as TRACKS

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = ("taskkit", "gateway", "media_service", "tracks_service", "intelligence_service", "stack", "bench")
FAMILIES = {family.name: family for family in (MEDIA, TRACKS, INTELLIGENCE)}
ALSO_FILE_TYPES = {"video", "image", "audio", "subtitles"}  # kinds whose names are file/track types too


def test_the_protos_declare_every_kind_of_the_api() -> None:
    assert list(KINDS) == [
        "video", "image", "audio", "adaptive_video",
        "subtitles", "chapters", "thumbnails",
        "speech", "nsfw", "summary", "outline",
    ]  # fmt: skip


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_each_family_runs_exactly_the_kinds_its_proto_declares(name: str) -> None:
    assert {kind.name for kind in FAMILIES[name].kinds} == kinds_of(name)
    assert FAMILIES[name].service_name == FAMILY_SERVICES[name].descriptor.full_name


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_kinds_route_is_its_create_rpc_with_spec_and_options(kind: str) -> None:
    route = KINDS[kind]
    assert route.rpc == rpc_name(kind) and kind_of_rpc(route.rpc) == kind
    request = route.request(options=route.options())
    assert request.HasField("spec") is False and request.HasField("options")


def test_kind_of_rpc_reads_only_create_rpcs() -> None:
    assert kind_of_rpc("CreateAdaptiveVideoTask") == "adaptive_video"
    assert kind_of_rpc("GetTask") is None and kind_of_rpc("CreateTasks") is None


def literal_kind_lists(tree: ast.AST) -> list[tuple[int, list[str]]]:
    """Collections written out in code (tuple, list, set, dict keys) that name two or more kinds
    (not counting the names that are file or rendition types as well: ``("video", "audio")``)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            items = [key for key in node.keys if key is not None]
        elif isinstance(node, ast.Tuple | ast.List | ast.Set):
            items = node.elts
        else:
            continue
        named = [item.value for item in items if isinstance(item, ast.Constant) and item.value in KINDS]
        if len(set(named) - ALSO_FILE_TYPES) >= 2:
            found.append((node.lineno, named))
    return found


def test_no_shipped_code_lists_kinds_again() -> None:
    """The family declarations are calls (``Kind("video", ...)``), not lists of names, so any
    collection of kind names in shipped code is a second place to edit."""
    found = {
        f"{path.relative_to(ROOT)}:{line}": names
        for top in SHIPPED
        for path in (ROOT / top).rglob("*.py")
        for line, names in literal_kind_lists(ast.parse(path.read_text()))
    }
    assert found == {}


def test_the_finder_sees_a_list_of_kinds() -> None:
    code = 'X = {"speech": 1, "nsfw": 2}\nY = ("subtitles", "chapters", "thumbnails")\nZ = ("video", "audio")'
    assert literal_kind_lists(ast.parse(code)) == [
        (1, ["speech", "nsfw"]),
        (2, ["subtitles", "chapters", "thumbnails"]),
    ]
