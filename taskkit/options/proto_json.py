"""Options between their API form (JSON as users write it) and typed protobuf messages.

The only non-obvious part is ``Dimension``: users write ``320`` or ``"50%"``; the proto holds
``{pixels: 320}`` or ``{percent: 50}``. Every other field maps one to one.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from transmute.tasks.v1 import tasks_pb2

from taskkit.errors import InvalidRequest
from taskkit.options.fields import fail, is_number

_DIMENSION = tasks_pb2.Dimension.DESCRIPTOR.full_name
_NUMBERS = {
    FieldDescriptor.CPPTYPE_INT32,
    FieldDescriptor.CPPTYPE_INT64,
    FieldDescriptor.CPPTYPE_UINT32,
    FieldDescriptor.CPPTYPE_UINT64,
    FieldDescriptor.CPPTYPE_DOUBLE,
    FieldDescriptor.CPPTYPE_FLOAT,
}


def _check_json_type(field: FieldDescriptor, value: Any, name: str) -> None:
    """Protobuf's JSON parser takes ``"10"`` for a number; the API does not: a number is a JSON
    number, so ``"10"`` is refused here, naming the field (``renditions[0].height`` inside a list
    of objects too)."""
    if value is None:
        return
    if field.is_repeated and isinstance(value, list):
        for index, item in enumerate(value):
            _check_value(field, item, f"{name}[{index}]")
    elif not field.is_repeated:
        _check_value(field, value, name)


def _check_value(field: FieldDescriptor, value: Any, name: str) -> None:
    if field.cpp_type in _NUMBERS and not is_number(value):
        raise fail(name, "a number", value)
    if field.cpp_type == FieldDescriptor.CPPTYPE_BOOL and not isinstance(value, bool):
        raise fail(name, "true or false", value)
    if field.cpp_type == FieldDescriptor.CPPTYPE_STRING and not isinstance(value, str):
        raise fail(name, "a string", value)
    nested_message = field.message_type is not None and field.message_type.full_name != _DIMENSION
    if nested_message and isinstance(value, dict):
        for key, item in value.items():
            nested = field.message_type.fields_by_name.get(key)
            if nested is not None:  # an unknown name is the parser's error below
                _check_json_type(nested, item, f"{name}.{key}")


def _dimension_fields(message_cls: type[Message]) -> set[str]:
    return {
        f.name
        for f in message_cls.DESCRIPTOR.fields
        if f.message_type is not None and f.message_type.full_name == _DIMENSION
    }


def _dimension_to_api(value: dict) -> int | str:
    if "pixels" in value:
        return int(value["pixels"])
    percent = float(value.get("percent", 0))
    return f"{percent:g}%"


def _dimension_from_api(field: str, value: Any) -> dict:
    if isinstance(value, bool):
        pass
    elif isinstance(value, int):
        return {"pixels": value}
    elif isinstance(value, str) and value.endswith("%"):
        try:
            return {"percent": float(value[:-1])}
        except ValueError:
            pass
    raise fail(field, 'a positive integer or a percentage like "50%"', value)


def to_api(message: Message) -> dict:
    """Typed options → the API's JSON form (only fields that were set)."""
    data = json_format.MessageToDict(message, preserving_proto_field_name=True)
    for name in _dimension_fields(type(message)) & data.keys():
        data[name] = _dimension_to_api(data[name])
    return data


def from_api(raw: Any, message_cls: type[Message]) -> Message:
    """The API's JSON form → typed options; unknown names and wrong types are 400s naming the field."""
    if raw is None:
        return message_cls()
    if not isinstance(raw, dict):
        raise InvalidRequest("options must be a JSON object.")
    allowed = [f.name for f in message_cls.DESCRIPTOR.fields]
    for name in raw:
        if name not in allowed:
            listed = ", ".join(allowed) if allowed else "none"
            raise InvalidRequest(f"options.{name} is not a known option; allowed options: {listed}.")
    data = {name: value for name, value in raw.items() if value is not None}  # null: not given
    for name in _dimension_fields(message_cls) & data.keys():
        data[name] = _dimension_from_api(name, data[name])
    message = message_cls()
    for name, value in data.items():
        _check_json_type(message_cls.DESCRIPTOR.fields_by_name[name], value, name)
        try:
            json_format.ParseDict({name: value}, message)  # merges; one field at a time to name it
        except json_format.ParseError as exc:
            raise InvalidRequest(
                f"options.{name} has a value of the wrong type ({_first_line(exc)})."
            ) from None
    return message


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0].rstrip(".")
