"""Task protobufs → the D25 JSON task object (the latest API shape)."""

from __future__ import annotations

from typing import Any

from transmute.tasks.v1 import tasks_pb2

from taskkit.records import json_values, result_json, status

_ENTRY_FIELDS = (
    "width", "height", "duration", "filesize", "codec", "audio_codec",
    "fps", "channels", "language", "label", "url",
)  # fmt: skip


_SUMMARY_TOP_LEVEL = ("title", "description", "tags", "languages")


def file_entry(entry: tasks_pb2.FileEntry) -> dict[str, Any]:
    shown: dict[str, Any] = {"kind": entry.kind, "type": entry.type}
    for name in _ENTRY_FIELDS:
        if entry.HasField(name):
            shown[name] = getattr(entry, name)
    if entry.renditions:
        shown["renditions"] = [_rendition(rendition) for rendition in entry.renditions]
    return shown


def _rendition(rendition: tasks_pb2.Rendition) -> dict[str, Any]:
    """Fields by hand, not ``MessageToDict``: that writes int64 (``bitrate``) as a JSON string."""
    shown: dict[str, Any] = {"type": rendition.type}
    for name in ("width", "height", "bitrate", "codec", "language", "label"):
        if rendition.HasField(name):
            shown[name] = getattr(rendition, name)
    return shown


def _optional(message: Any, name: str) -> Any:
    return getattr(message, name) if message.HasField(name) else None


def task_json(task: tasks_pb2.Task) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": task.id,
        "object": "task",
        "kind": task.kind,
        "status": status.name(task.status),
        "run_id": task.run_id,
        "parent_id": _optional(task, "parent_id"),
        "progress": _optional(task, "progress"),
        "url": task.url,
        "options": json_values.struct_to_dict(task.options),
        "inputs": [file_entry(e) for e in task.inputs],
        "outputs": [file_entry(e) for e in task.outputs],
        "metadata": json_values.struct_to_dict(task.metadata),
        "error": _optional(task, "error"),
        "filename": _optional(task, "filename"),
        "folder": _optional(task, "folder"),
        "ref": _optional(task, "ref"),
        "created_at": task.created_at,
        "started_at": _optional(task, "started_at"),
        "finished_at": _optional(task, "finished_at"),
        "updated_at": task.updated_at,
    }
    results = result_json(task)
    if results is not None:
        body["results"] = results
        if results["kind"] == "summary":  # the D25 example shows a summary at the task's top level
            body.update({name: results[name] for name in _SUMMARY_TOP_LEVEL})
    if task.HasField("cache_hit"):
        body["cache_hit"] = task.cache_hit
    return body
