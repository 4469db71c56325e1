"""An intelligence result stored as the task's ``application/json`` output, the same JSON the task
shows inline as ``results`` (``taskkit.records.result_json``)."""

from __future__ import annotations

import json

from google.protobuf.message import Message
from transmute.tasks.v1 import tasks_pb2

from taskkit.records import message_json
from taskkit.runtime import Output, TaskContext, output_name


def json_output(ctx: TaskContext, result: Message) -> Output:
    path = ctx.workdir / "result.json"
    body = {"kind": ctx.task.kind, **message_json(result)}
    path.write_text(json.dumps(body, ensure_ascii=False, separators=(",", ":")))
    entry = tasks_pb2.FileEntry(kind="intelligence", type="application/json")
    return Output(path=path, name=output_name(ctx.task, ".json"), entry=entry)
