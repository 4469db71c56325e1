"""The API's operations, one router per resource: ``/tasks`` (create, get, list, cancel and the
events of one task), ``/files`` (signed links: download with Range, upload) and ``/signatures``.
"""

from gateway.api.routes import files, signatures, tasks

ROUTERS = (tasks.router, files.router, signatures.router)  # in the order the app includes them

__all__ = ["ROUTERS"]
