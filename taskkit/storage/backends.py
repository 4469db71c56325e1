"""The configured storage backend (``TRANSMUTE_STORAGE_BACKEND``): ``file``, ``s3`` or ``nats``."""

from __future__ import annotations

from taskkit.config import Settings
from taskkit.errors import InvalidRequest
from taskkit.storage.base import Storage
from taskkit.storage.local import FileStorage

BACKENDS = ("file", "s3", "nats")


def open_storage(settings: Settings) -> Storage:
    """The configured backend, not yet opened: enter it (``async with``) once per process."""
    if settings.storage_backend == "file":
        return FileStorage(settings.storage_dir)
    if settings.storage_backend == "s3":
        from taskkit.storage.s3 import S3Storage  # imported only where used: aiobotocore is heavy

        return S3Storage.from_settings(settings)
    if settings.storage_backend == "nats":
        from taskkit.storage.nats_objects import NatsStorage

        return NatsStorage.from_settings(settings)
    raise InvalidRequest(
        f"TRANSMUTE_STORAGE_BACKEND={settings.storage_backend!r} is not supported; "
        f"use one of {', '.join(BACKENDS)}."
    )
