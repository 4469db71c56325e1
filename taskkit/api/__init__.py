"""The gRPC servers of a family process: the server factory (health, reflection, TLS), the
glue from a family's Create RPCs to the write protocol, and the shared Tasks API.
"""

from taskkit.api.create_servicer import CreateHelper, servicer_for
from taskkit.api.server import create_server, server_credentials, set_serving
from taskkit.api.tasks_servicer import TasksServicer

__all__ = [
    "CreateHelper",
    "TasksServicer",
    "create_server",
    "server_credentials",
    "servicer_for",
    "set_serving",
]
