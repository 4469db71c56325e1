"""What every route relies on and none owns: API keys → projects, the one table that turns errors
into HTTP responses, the limits on a request's size, the checks on its JSON values, HTTP Range,
and retrying a family call while its service is unavailable (``retry.call``).
"""

from gateway.core import retry
from gateway.core.auth import KeyRing
from gateway.core.byte_ranges import ByteRange, Unsatisfiable, parse_range
from gateway.core.errors import (
    describe_rpc_error,
    error_body,
    from_domain,
    from_rpc,
    on_domain_error,
    on_http_error,
    on_rpc_error,
    on_validation_error,
)
from gateway.core.limits import BodyLimit, HeaderLimitedProtocol, header_limited_protocol
from gateway.core.validation import CheckedRoute

__all__ = [
    "BodyLimit",
    "ByteRange",
    "CheckedRoute",
    "HeaderLimitedProtocol",
    "KeyRing",
    "Unsatisfiable",
    "describe_rpc_error",
    "error_body",
    "from_domain",
    "from_rpc",
    "header_limited_protocol",
    "on_domain_error",
    "on_http_error",
    "on_rpc_error",
    "on_validation_error",
    "parse_range",
    "retry",
]
