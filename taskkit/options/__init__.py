"""Kind options: the field parsers every kind's rules are built from, the JSON <-> proto bridge
with exact type checks, and the languages speech knows.
"""

from taskkit.options.fields import (
    Echo,
    ValueParser,
    boolean,
    choice,
    fail,
    got,
    integer,
    is_number,
    language,
    length,
    parse_fields,
    seconds,
)

__all__ = [
    "Echo",
    "ValueParser",
    "boolean",
    "choice",
    "fail",
    "got",
    "integer",
    "is_number",
    "language",
    "length",
    "parse_fields",
    "seconds",
]
