"""Object storage behind one interface (``Storage``) with three backends (file, s3, nats),
and the signed links to what it holds.
"""

from taskkit.storage.backends import open_storage
from taskkit.storage.base import Storage, Version, read_and_close
from taskkit.storage.signing import check_key

__all__ = [
    "Storage",
    "Version",
    "check_key",
    "open_storage",
    "read_and_close",
]
