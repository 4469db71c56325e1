"""A task's typed result (the ``Task.result`` oneof) as the API's JSON, with every field present.

``json_format.MessageToDict`` drops proto3 defaults unless told otherwise, writes int64 as strings,
and leaves unset ``optional`` fields out; a client reading ``{nudity: false}`` must not find the
key missing, and ``violence: null`` (not judged) must not read as ``false``. So fields are walked
by hand: every field is written, an unset ``optional`` one as ``null``. The same JSON is the
task's ``results`` and the body of its stored ``application/json`` output.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from transmute.tasks.v1 import tasks_pb2


def message_json(message: Message) -> dict[str, Any]:
    """Every field of ``message``; unset fields with presence are ``None``."""
    shown: dict[str, Any] = {}
    for descriptor in message.DESCRIPTOR.fields:
        value = getattr(message, descriptor.name)
        if descriptor.is_repeated:
            shown[descriptor.name] = [_value(descriptor, item) for item in value]
        elif descriptor.has_presence and not message.HasField(descriptor.name):
            shown[descriptor.name] = None
        else:
            shown[descriptor.name] = _value(descriptor, value)
    return shown


def _value(descriptor: FieldDescriptor, value: Any) -> Any:
    if descriptor.type == FieldDescriptor.TYPE_MESSAGE:
        return message_json(value)
    return value


def result_json(task: tasks_pb2.Task) -> dict[str, Any] | None:
    """``{kind, ...fields}`` of the task's result, or None when it has none (yet)."""
    which = task.WhichOneof("result")
    if which is None:
        return None
    return {"kind": which, **message_json(getattr(task, which))}
