"""How the services call each other over gRPC: clients of the family services, the one mapping
of the error vocabulary to gRPC status codes, and the metadata every call carries (project,
Idempotency-Key, proposed task id); and the kinds, read from the protos.
"""

from taskkit.rpc.clients import Clients
from taskkit.rpc.errors import ERROR_KIND_KEY, ErrorInterceptor, status_code
from taskkit.rpc.kinds import FAMILY_SERVICES, KINDS, KindRoute, kind_of_rpc, kinds_of, rpc_name
from taskkit.rpc.metadata import check_project, project_metadata, project_of

__all__ = [
    "ERROR_KIND_KEY",
    "FAMILY_SERVICES",
    "KINDS",
    "Clients",
    "ErrorInterceptor",
    "KindRoute",
    "check_project",
    "kind_of_rpc",
    "kinds_of",
    "project_metadata",
    "project_of",
    "rpc_name",
    "status_code",
]
