"""The building blocks of every kind's option parser: strict JSON value checks with errors that
name the field, the field-table walk, and the echo stored as the task's ``options``.

Types are strict: a number must be a JSON number (not ``"10"``, not ``true``), a boolean a JSON
boolean; ``null`` means "not given". A family's ``options.py`` declares a table of field → value
parser per kind and a frozen dataclass (an :class:`Echo`) holding the result.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Any

from taskkit.errors import InvalidRequest
from taskkit.media.geometry import MAX_DIMENSION, Length, Percent
from taskkit.options.languages import SPEECH_LANGUAGES

ValueParser = Callable[[str, Any], Any]
MAX_PERCENT = 1000
_PERCENT_RE = re.compile(r"^(\d+(?:\.\d+)?)%$")


def got(value: Any) -> str:
    """A value as the user wrote it, for error messages."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def fail(field: str, expected: str, value: Any) -> InvalidRequest:
    """``options.<field> must be <expected> (got <value>).``"""
    return InvalidRequest(f"options.{field} must be {expected} (got {got(value)}).")


def is_number(value: Any) -> bool:
    """A finite JSON number; ``True`` is not 1 here."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def choice(allowed: tuple[str, ...], aliases: Mapping[str, str] | None = None) -> Callable[[str, Any], str]:
    """One of ``allowed`` (after ``aliases``, e.g. ``jpg`` → ``jpeg``)."""

    def parse(field: str, value: Any) -> str:
        if isinstance(value, str):
            value = (aliases or {}).get(value, value)
            if value in allowed:
                return value
        raise fail(field, "one of " + ", ".join(allowed), value)

    return parse


def boolean(field: str, value: Any) -> bool:
    """A JSON boolean."""
    if isinstance(value, bool):
        return value
    raise fail(field, "true or false", value)


def language(field: str, value: Any) -> str:
    """A language speech recognition knows (``options.languages``), lowercased: ``"DE"`` → ``"de"``."""
    if isinstance(value, str) and value.lower() in SPEECH_LANGUAGES:
        return value.lower()
    raise fail(field, 'a language code speech recognition knows, like "en" (ISO 639-1)', value)


def integer(low: int, high: int, unit: str = "") -> ValueParser:
    """A JSON integer from ``low`` to ``high``."""

    def parse(field: str, value: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
            return value
        raise fail(field, f"an integer{unit} from {low} to {high}", value)

    return parse


def length(field: str, value: Any) -> Length:
    """A width or height: pixels (a positive integer up to ``MAX_DIMENSION``) or ``"50%"`` of the
    input's side."""
    expected = 'a positive integer or a percentage like "50%"'
    if isinstance(value, int) and not isinstance(value, bool):
        if value <= 0:
            raise fail(field, expected, value)
        if value > MAX_DIMENSION:
            raise fail(field, f"at most {MAX_DIMENSION} pixels", value)
        return value
    if isinstance(value, str) and (match := _PERCENT_RE.match(value)):
        percent = float(match.group(1))
        if 0 < percent <= MAX_PERCENT:
            return Percent(percent)
        raise fail(field, f'a percentage above 0% and at most {MAX_PERCENT}% like "50%"', value)
    raise fail(field, expected, value)


def seconds(low: float, high: float = math.inf) -> ValueParser:
    """A JSON number of seconds from ``low`` to ``high`` (no upper bound unless given)."""
    bounds = f", {low:g} or more" if high == math.inf else f" from {low:g} to {high:g}"

    def parse(field: str, value: Any) -> float:
        if is_number(value) and low <= value <= high:
            return float(value)
        raise fail(field, f"a number of seconds{bounds}", value)

    return parse


def parse_fields(
    kind: str,
    raw: Any,
    parsers: Mapping[str, ValueParser],
    *,
    unsupported: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Check names, parse each given value; ``None`` values count as not given. ``unsupported``
    names options the reference documents but this server does not implement, so the error
    says so instead of calling them unknown."""
    if not isinstance(raw, Mapping):
        raise InvalidRequest(f"options must be a JSON object (got {got(raw)}).")
    allowed = ", ".join(sorted(parsers))
    parsed: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in parsers:
            reason = "is not supported by this server" if name in unsupported else "is not a known option"
            raise InvalidRequest(f"options.{name} {reason} for kind {kind}; allowed options are {allowed}.")
        if value is not None:
            parsed[name] = parsers[name](name, value)
    return parsed


def echo(value: Any) -> Any:
    """A parsed value as JSON: nested options as objects, tuples as lists, and values of a
    family's own types (a percentage) as their text."""
    if isinstance(value, Echo):
        return value.to_dict()
    if isinstance(value, tuple):
        return [echo(item) for item in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


class Echo:
    """``to_dict`` shared by the option dataclasses: given fields plus resolved defaults."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if value is not None and value != ():
                out[f.name] = echo(value)
        return out
