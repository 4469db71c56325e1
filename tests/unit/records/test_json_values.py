"""The bounds on free-form JSON (taskkit.records.json_values): each refusal names the field that broke it."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
from google.protobuf import struct_pb2

from taskkit.errors import InvalidRequest
from taskkit.records import json_values


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"a": math.inf}, "'a' must be a finite number (got inf)"),
        ({"a": [0, -math.inf]}, "'a[1]' must be a finite number"),
        ({"a": {"b": math.nan}}, "'a.b' must be a finite number (got nan)"),
        ({"a": "ok\ud83d"}, "'a' is not valid Unicode text"),
        ({"a": {"\udc00": 1}}, "A key in 'a' is not valid Unicode text"),
        ("\ud800", "'body' is not valid Unicode text"),
        (nested(33), "'body' is nested deeper than 32 levels"),
    ],
)
def test_check_value_refuses_and_names_the_field(value: Any, message: str) -> None:
    with pytest.raises(InvalidRequest, match=re.escape(message)):
        json_values.check_value(value)


def test_check_value_accepts_what_json_can_hold() -> None:
    json_values.check_value({"a": [1, 2.5, "é😀", None, True, {"b": nested(28)}]})


def test_depth_is_counted_from_the_value() -> None:
    json_values.check_metadata({"a": {"b": {"c": {"d": {"e": 1}}}}}, max_depth=5, max_bytes=1000)
    with pytest.raises(InvalidRequest, match="'metadata' is nested deeper than 5 levels"):
        json_values.check_metadata({"a": {"b": {"c": {"d": {"e": [1]}}}}}, max_depth=5, max_bytes=1000)


def test_metadata_size_is_compact_utf8_json() -> None:
    json_values.check_metadata({"é": "é" * 10}, max_depth=5, max_bytes=29)  # {"é":"éééééééééé"}: 29 bytes
    with pytest.raises(InvalidRequest, match="'metadata' is 30 bytes as JSON, over the limit of 29 bytes"):
        json_values.check_metadata({"é": "é" * 10 + "x"}, max_depth=5, max_bytes=29)
    with pytest.raises(InvalidRequest, match="must be a JSON object"):
        json_values.check_metadata([1], max_depth=5, max_bytes=28)


def test_from_struct_keeps_what_json_format_refuses() -> None:
    struct = struct_pb2.Struct()
    struct.update({"a": math.inf, "b": [1, {"c": None}], "d": "x", "e": True})
    assert json_values.from_struct(struct) == {"a": math.inf, "b": [1.0, {"c": None}], "d": "x", "e": True}
