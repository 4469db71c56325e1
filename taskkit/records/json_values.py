"""The free-form JSON a task carries (its request body, ``metadata``, ``options``), bounded so every
reader can render it.

JSON has no Infinity or NaN, a response cannot hold a lone UTF-16 surrogate, and protobuf refuses
to parse messages nested past 100 levels; Python's ``json`` module accepts all three on input. A
record holding one would break every read that includes it (a task, a whole listing), so the
gateway refuses such a request at the door and the record store refuses to write such a record.
Both use :func:`check_value`, which names the offending field.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any

from google.protobuf import struct_pb2

from taskkit.errors import InvalidRequest

MAX_BODY_DEPTH = 32  # nesting anywhere in a request body; protobuf's own parse limit is 100
_SURROGATE = re.compile("[\ud800-\udfff]")


def _walk(value: Any, path: str) -> Iterator[tuple[str, Any, int]]:
    """(path, value, depth) of every value under ``value``, iteratively (no recursion limit to
    hit); each container is one level deeper than the one holding it."""
    stack = [(path, value, 0)]
    while stack:
        where, item, depth = stack.pop()
        yield where, item, depth
        if isinstance(item, dict):
            stack.extend(
                (f"{where}.{key}" if where else str(key), child, depth + 1) for key, child in item.items()
            )
        elif isinstance(item, list):
            stack.extend((f"{where}[{index}]", child, depth + 1) for index, child in enumerate(item))


def check_value(value: Any, *, field: str = "", max_depth: int = MAX_BODY_DEPTH) -> None:
    """Refuse what JSON or a task record cannot hold: non-finite numbers, lone surrogates in
    strings or keys, and containers nested more than ``max_depth`` levels below ``value``.
    ``field`` is the path of ``value`` in messages (empty for a whole request body)."""
    for where, item, depth in _walk(value, field):
        if depth > max_depth:
            raise InvalidRequest(
                f"'{field or 'body'}' is nested deeper than {max_depth} levels (at '{where}')."
            )
        if isinstance(item, float) and not math.isfinite(item):
            raise InvalidRequest(f"'{where}' must be a finite number (got {item}).")
        if isinstance(item, str) and _SURROGATE.search(item):
            raise InvalidRequest(
                f"'{where or 'body'}' is not valid Unicode text (it holds a lone surrogate)."
            )
        if isinstance(item, dict) and any(_SURROGATE.search(str(key)) for key in item):
            raise InvalidRequest(
                f"A key in '{where or 'body'}' is not valid Unicode text (it holds a lone surrogate)."
            )


def check_metadata(value: Any, *, max_depth: int, max_bytes: int) -> None:
    """``metadata``: a JSON object within the documented depth and size (compact JSON, UTF-8)."""
    if not isinstance(value, dict):
        raise InvalidRequest("'metadata' must be a JSON object.")
    check_value(value, field="metadata", max_depth=max_depth)
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > max_bytes:
        raise InvalidRequest(f"'metadata' is {size} bytes as JSON, over the limit of {max_bytes} bytes.")


def from_struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct as plain Python values, keeping what ``json_format`` would refuse (Infinity, NaN)
    so :func:`check_value` can name it."""
    return {key: _from_value(value) for key, value in struct.fields.items()}


def _from_value(value: struct_pb2.Value) -> Any:
    which = value.WhichOneof("kind")
    if which == "struct_value":
        return from_struct(value.struct_value)
    if which == "list_value":
        return [_from_value(item) for item in value.list_value.values]
    if which in (None, "null_value"):
        return None
    return getattr(value, which)


def _restore_ints(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _restore_ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore_ints(v) for v in value]
    return value


def struct_to_dict(struct: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct as plain JSON. Struct keeps every number as a double; whole numbers come back as
    ints so ``"width": 640`` round-trips as 640, not 640.0 (which an integer option would refuse)."""
    return _restore_ints(from_struct(struct))  # type: ignore[no-any-return]
