"""What a handler returns: the files it made (plain files or whole packages) and a typed result."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf.message import Message
from transmute.tasks.v1 import tasks_pb2


@dataclass
class Output:
    """One output entry of the task record.

    A plain file: ``path`` is stored as ``<project>/<task>/<name>``. A package (``package`` set, e.g.
    an HLS folder): every file under ``package`` is stored under ``<project>/<task>/<name>/``, the
    record holds one entry for the package whose key is ``path`` (the entry point, inside
    ``package``), and its link is a grant for the whole folder so relative references resolve. Its
    ``filesize`` is the whole package's unless the handler set it (one sheet of a storyboard).
    """

    path: Path
    name: str
    entry: tasks_pb2.FileEntry
    package: Path | None = None


@dataclass
class Outcome:
    """A handler's result: outputs, optionally one ``Task.result`` message (speech, nsfw, ...), and
    whether it reused a cached intermediate (``Task.cache_hit``; None when the kind caches nothing)."""

    outputs: list[Output] = field(default_factory=list)
    result: Message | None = None
    cache_hit: bool | None = None


def set_result(task: tasks_pb2.Task, result: Message) -> None:
    """Put ``result`` into the ``Task.result`` oneof field of its type."""
    for candidate in tasks_pb2.Task.DESCRIPTOR.oneofs_by_name["result"].fields:
        if candidate.message_type is result.DESCRIPTOR:
            getattr(task, candidate.name).CopyFrom(result)
            return
    raise TypeError(f"{result.DESCRIPTOR.full_name} is not one of the Task.result types")


def output_name(task: tasks_pb2.Task, extension: str) -> str:
    """The stored name: ``[folder/]filename``, defaulting to ``<kind><extension>``."""
    filename = task.filename if task.HasField("filename") else f"{task.kind}{extension}"
    folder = task.folder.strip("/") if task.HasField("folder") else ""
    return f"{folder}/{filename}" if folder else filename
