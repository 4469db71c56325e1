"""Object storage behind one interface (``Storage``) with three backends (file, s3, nats),
and the signed links to what it holds.
"""

from taskkit.storage.backends import open_storage
from taskkit.storage.base import Storage
from taskkit.storage.signing import check_key

__all__ = [
    "Storage",
    "check_key",
    "open_storage",
]
