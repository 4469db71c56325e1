"""API versions: pick a response shape from ``Accept-Version`` and translate D25 ⇄ A25.

The gateway speaks D25 natively. ``2025-08-20`` (A25) exists so that the official ittybit
Python SDK 1.0.0 works against us with only ``base_url`` and the API key changed. What that
SDK does on the wire, and therefore what this module produces:

* Every call hard-codes ``Accept-Version: 2025-08-20`` and ``Authorization: Bearer <key>``
  (``Ittybit(version=…)`` only adds a second header spelled ``ACCEPT_VERSION``).
* ``tasks.create(request=…)`` posts ``request`` verbatim: A25 bodies are ``file_id``/``url``,
  ``kind`` and options flat at the top level, hence :func:`request_from_a25`.
* ``tasks.list(page=, limit=)`` sends page-number pagination, hence :func:`page_window_a25`.
* Responses are parsed bare: a task object, or a JSON array for lists. There is no
  ``{meta, data, links}`` envelope in the 2025-08-20 API; given one, the SDK yields a task with
  every field ``None`` and ``tasks.list()`` returns the raw dict instead of a list.
* The SDK's models are built without validation: unknown fields are kept as extras and unknown
  enum values pass through, so a wrong shape never raises there, it silently gives the caller
  ``None`` fields. That is why the conversion below is exact rather than best-effort.
* Error bodies are not parsed (``ApiError.body`` is the raw JSON). A25 errors were
  ``{"message": …}``, which the D25 ``{"kind", "message"}`` body already contains, so error
  bodies need no conversion.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from taskkit.errors import InvalidRequest
from taskkit.rpc import kinds_of

LATEST = "latest"
V2025_08_20 = "2025-08-20"
ACCEPTED_VERSIONS = (LATEST, V2025_08_20)

# The 2025-09-15 changelog is the first that changed the task shape (Unix timestamps, new
# statuses), so a client pinned to any earlier date expects A25; later dates get D25.
_D25_SINCE = date(2025, 9, 15)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

# Our lifecycle is waiting → queued → validating → processing → finishing. ``validating``
# starts once a worker holds the task, which A25 called ``processing``; mapping it so keeps
# the A25 status monotonic (pending, pending, processing, processing, processing).
_A25_STATUS = {
    "waiting": "pending",
    "queued": "pending",
    "validating": "processing",
    "processing": "processing",
    "finishing": "processing",
    "succeeded": "completed",
    "failed": "failed",
    "cancelled": "cancelled",
}

# 2025-11-10 renamed ``description`` to ``summary``; every other kind kept its name.
_A25_KIND = {"summary": "description"}
_D25_KIND = {a25: d25 for d25, a25 in _A25_KIND.items()}

# A25 classed files by ``object``: media renditions are sources, timed text and thumbnail
# sprites are tracks, analysis results are intelligence.
_TRACK_KINDS = kinds_of("tracks")  # their outputs are A25 "track" files
_INTELLIGENCE_KINDS = kinds_of("intelligence")  # theirs are "intelligence" files
_MEDIA_FILE_KINDS = frozenset({"video", "image", "audio"})  # A25 source file kinds, by MIME type

# Request keys that describe the task rather than configure it; anything else at the top level
# of a create body is a flat (A25-style) option.
_TOP_LEVEL_KEYS = frozenset(
    {
        "url",
        "kind",
        "options",
        "file_id",
        "filename",
        "folder",
        "ref",
        "webhook_url",
        "metadata",
        "connection_id",
        "destination",
    }
)

_DEFAULT_PAGE_LIMIT = 20
_MAX_PAGE_LIMIT = 100


def resolve_version(header: str | None) -> str:
    """Map an ``Accept-Version`` value to :data:`LATEST` or :data:`V2025_08_20`.

    Absent, empty or ``latest`` means the newest shape, as ittybit does. Any well-formed date
    pins the shape that was current on that date, so versions we never heard of still resolve:
    older dates get A25 (the oldest shape we serve) and newer ones D25. Anything else is
    rejected rather than guessed, because a silently wrong shape breaks clients in odd places.
    """
    if header is None:
        return LATEST
    value = header.strip().lower()
    if value in ("", LATEST):
        return LATEST
    pinned: date | None = None
    if _DATE.fullmatch(value):
        try:
            pinned = date.fromisoformat(value)
        except ValueError:
            pinned = None
    if pinned is None:
        raise InvalidRequest(
            f"Accept-Version {header!r} is not supported; send one of "
            f"{', '.join(repr(v) for v in ACCEPTED_VERSIONS)} or another date as YYYY-MM-DD."
        )
    return V2025_08_20 if pinned < _D25_SINCE else LATEST


def task_to_a25(task: Mapping[str, Any]) -> dict[str, Any]:
    """Render a D25 task dict in the shape SDK 1.0.0 parses (``TasksGetResponse``).

    A25 had one input and one output file per task, so the first D25 entry of each becomes the
    singular ``input``/``output``; further outputs (thumbnails) are listed in ``output.urls``.
    ``results`` carries the output's ``url`` and ``format`` because A25 webhook consumers read
    them there, and keeps any ``passed``/``failed``/``continue`` a conditions task recorded.
    """
    kind = task.get("kind")
    status = task.get("status")
    output = _output_to_a25(task)
    stored = task.get("results")
    results: dict[str, Any] | None = dict(stored) if isinstance(stored, Mapping) else None
    if status == "succeeded" and output is not None:
        results = {**(results or {}), "url": output.get("url"), "format": output.get("format")}
    created_at = task.get("created_at")
    updated_at = task.get("updated_at") or created_at
    return {
        "id": task.get("id"),
        "object": "task",
        "kind": _A25_KIND.get(kind, kind) if isinstance(kind, str) else kind,
        "input": _input_to_a25(task),
        "options": dict(task.get("options") or {}),
        "output": output,
        "status": _A25_STATUS.get(status, status) if isinstance(status, str) else status,
        "progress": task.get("progress"),
        "error": _error_text(task.get("error")),
        "created_by": task.get("created_by"),
        "created": _iso8601(created_at),
        "updated": _iso8601(updated_at),
        "parent_id": task.get("parent_id"),
        "workflow": None,
        "results": results,
    }


def request_from_a25(body: Any) -> dict[str, Any]:
    """Normalise any create-task body (A25 flat, D25 nested, or a mix) to the D25 shape.

    Top-level keys that are not task fields become options, the A25 kind name ``description``
    becomes ``summary``, and ``file_id`` is kept for the gateway to resolve or reject. Options
    given both flat and nested must agree: picking one silently would hide a client bug.
    The result always has ``url``, ``kind`` and ``options``; checking their values is left to
    the caller's validation so both versions get the same error messages.
    """
    if not isinstance(body, Mapping):
        raise InvalidRequest("The request body must be a JSON object.")
    nested = body.get("options")
    if nested is None:
        nested = {}
    elif not isinstance(nested, Mapping):
        raise InvalidRequest("The 'options' field must be an object.")
    flat = {key: value for key, value in body.items() if key not in _TOP_LEVEL_KEYS}
    clashes = sorted(key for key in flat.keys() & nested.keys() if flat[key] != nested[key])
    if clashes:
        names = ", ".join(repr(key) for key in clashes)
        raise InvalidRequest(
            f"Option {names} is given both at the top level and in 'options' with different values; "
            "send it once."
        )
    normalised = {key: value for key, value in body.items() if key in _TOP_LEVEL_KEYS}
    kind = body.get("kind")
    normalised["url"] = body.get("url")
    normalised["kind"] = _D25_KIND.get(kind, kind) if isinstance(kind, str) else kind
    normalised["options"] = {**flat, **nested}
    return normalised


MAX_PAGE_NUMBER = 1_000_000  # offsets stay well inside the int32 of ListTasksRequest.offset


def page_window_a25(page: int | None, limit: int | None) -> tuple[int, int]:
    """Turn A25 page-number pagination (``?page=&limit=``) into ``(offset, limit)``.

    SDK 1.0.0 lists with ``page``/``limit`` only; the D25 cursor parameters do not exist for
    it. Defaults and bounds match D25's ``limit`` so both versions page the same way.
    """
    page = 1 if page is None else page
    limit = _DEFAULT_PAGE_LIMIT if limit is None else limit
    if page < 1:
        raise InvalidRequest("The 'page' parameter must be 1 or more.")
    if not 1 <= limit <= _MAX_PAGE_LIMIT:
        raise InvalidRequest(f"The 'limit' parameter must be between 1 and {_MAX_PAGE_LIMIT}.")
    return (page - 1) * limit, limit


def _input_to_a25(task: Mapping[str, Any]) -> dict[str, Any] | None:
    """The probed input file, or just the URL while the task has not been probed yet."""
    inputs = task.get("inputs") or []
    if inputs:
        entry = inputs[0]
        return _file_to_a25(entry, object_="source", kind=_media_kind(entry, task.get("kind")))
    url = task.get("url")
    return {"url": url} if url is not None else None


def _output_to_a25(task: Mapping[str, Any]) -> dict[str, Any] | None:
    outputs = task.get("outputs") or []
    if not outputs:
        return None
    kind = task.get("kind")
    first = outputs[0]
    if kind in _TRACK_KINDS:
        object_, file_kind = "track", kind
    elif kind in _INTELLIGENCE_KINDS:
        object_, file_kind = "intelligence", _A25_KIND.get(kind, kind)
    else:
        object_, file_kind = "source", _media_kind(first, kind)
    output = _file_to_a25(first, object_=object_, kind=file_kind)
    fmt = (task.get("options") or {}).get("format")
    if fmt is not None:
        output["format"] = fmt
    for key in ("filename", "folder", "ref"):
        if task.get(key) is not None:
            output[key] = task[key]
    if len(outputs) > 1:
        output["count"] = len(outputs)
        output["urls"] = [entry.get("url") for entry in outputs]
    return output


def _file_to_a25(entry: Mapping[str, Any], *, object_: str, kind: Any) -> dict[str, Any]:
    """A D25 file entry as an A25 File: its D25 ``kind`` (source/track) moves to ``object``."""
    subtype = str(entry.get("type") or "").partition("/")[2]
    file = {**entry, "object": object_, "kind": kind, "status": "ready"}
    if subtype:
        file.setdefault("format", subtype)
    return file


def _media_kind(entry: Mapping[str, Any], fallback: Any) -> Any:
    """video/image/audio from the MIME type, which A25 used as a source file's ``kind``."""
    major = str(entry.get("type") or "").partition("/")[0]
    return major if major in _MEDIA_FILE_KINDS else fallback


def _error_text(error: Any) -> str | None:
    """A25 ``error`` is a string; accept a ``{kind, message}`` object too, in case one is stored."""
    if isinstance(error, Mapping):
        return error.get("message") or error.get("kind")
    return error


def _iso8601(seconds: float | None) -> str | None:
    """Unix seconds → ``2025-01-01T00:03:45Z``, the form A25 and its SDK used."""
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")
