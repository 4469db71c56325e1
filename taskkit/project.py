"""The caller's project on every gRPC call, carried in the ``transmute-project`` metadata entry.

The gateway authenticates API keys and forwards the key's project; services trust it (they sit
behind the gateway or envoy, never on the public edge). Records are keyed by project, so a task of
another project is simply not found.
"""

from __future__ import annotations

import re

import grpc

from taskkit.errors import InvalidRequest

PROJECT_KEY = "transmute-project"
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def check_project(name: str) -> str:
    if not _NAME.match(name):
        raise InvalidRequest(f"'{name}' is not a valid project name: use 1-64 letters, digits, '-' or '_'.")
    return name


def project_of(context: grpc.aio.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == PROJECT_KEY:
            return check_project(str(value))
    raise InvalidRequest(f"The '{PROJECT_KEY}' metadata entry is required.")
