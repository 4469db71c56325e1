"""Getting a task's input onto local disk.

Links this deployment signed itself (``<public_url>/files/...``) are read straight from storage
after checking their signature: the worker need not call the gateway over the network, and the
private-address guard stays on for every other URL.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from taskkit.config import Settings
from taskkit.errors import InputError, NotFound
from taskkit.fetch import FetchPolicy, check_scheme, fetch_to_file
from taskkit.storage import signing
from taskkit.storage.base import Storage


def own_file_key(url: str, settings: Settings) -> str | None:
    """The storage key behind a link signed by this deployment, or None for any other URL.

    Raises InputError when the link is ours but its signature is wrong or has expired.
    """
    prefix = settings.base_url + signing.FILES_ROUTE + "/"
    if not url.startswith(prefix):
        return None
    parts = urlsplit(url).path[len(signing.FILES_ROUTE) + 1 :].split("/", 2)
    if len(parts) != 3 or not parts[0].isdigit():
        raise InputError("the input link is not a valid signed file link")
    expiry, sig, key = int(parts[0]), parts[1], unquote(parts[2])
    if not signing.verify(settings.signing_secret.get_secret_value(), "get", expiry, sig, key):
        raise InputError("the input link's signature is invalid or has expired")
    return key


async def fetch_input(url: str, dest: Path, *, settings: Settings, storage: Storage) -> int:
    """Copy the input at ``url`` to ``dest``; return its size in bytes."""
    key = own_file_key(url, settings)
    if key is not None:
        try:
            size = await storage.fetch_file(key, dest)
        except NotFound:
            raise InputError("the input file does not exist") from None
        if size > settings.max_input_bytes:
            raise InputError(f"the input is larger than the limit of {settings.max_input_bytes} bytes")
        return size
    check_scheme(url)
    result = await fetch_to_file(url, dest, FetchPolicy.from_settings(settings))
    return result.size
