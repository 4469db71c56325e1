"""The signed folder grant: it covers a package's folder and nothing else, and ``present``
gives a package output one.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from pydantic import SecretStr
from transmute.tasks.v1 import tasks_pb2

from taskkit.api.tasks_servicer import present
from taskkit.config import Settings
from taskkit.storage import signing
from tests.unit.runtime.family_under_test import (
    SECRET,
)


def link_parts(url: str) -> tuple[int, str, str]:
    """(expiry, signature, key) of a ``/files/<expiry>/<signature>/<key>`` link."""
    expiry, sig, key = urlsplit(url).path.removeprefix(signing.FILES_ROUTE + "/").split("/", 2)
    return int(expiry), sig, unquote(key)


def test_a_folder_grant_covers_the_folder_and_nothing_else() -> None:
    folder = "p/task_1/hls"
    url = signing.signed_url("http://x", SECRET, f"{folder}/master.m3u8", ttl=60, prefix=folder)
    expiry, sig, key = link_parts(url)
    assert key == f"{folder}/master.m3u8"
    assert signing.verify(SECRET, "get", expiry, sig, key)
    assert signing.verify(SECRET, "get", expiry, sig, f"{folder}/seg-0-00001.m4s")
    assert signing.verify(SECRET, "get", expiry, sig, f"{folder}/720p/segs/seg-00001.m4s")
    assert not signing.verify(SECRET, "get", expiry, sig, "p/task_1/poster.png")
    assert not signing.verify(SECRET, "get", expiry, sig, "p/task_1/hlsx/master.m3u8")
    assert not signing.verify(SECRET, "put", expiry, sig, key)
    assert not signing.verify("another-secret", "get", expiry, sig, key)
    tampered = sig[:-1] + ("A" if sig[-1] != "A" else "B")
    assert not signing.verify(SECRET, "get", expiry, tampered, key)
    assert not signing.verify(SECRET, "get", expiry, sig, key, now=expiry + 1)


def test_a_key_link_does_not_cover_its_siblings() -> None:
    url = signing.signed_url("http://x", SECRET, "p/task_1/copy.png", ttl=60)
    expiry, sig, key = link_parts(url)
    assert signing.verify(SECRET, "get", expiry, sig, key)
    assert not signing.verify(SECRET, "get", expiry, sig, "p/task_1/other.png")


def test_present_gives_a_package_output_a_folder_grant() -> None:
    settings = Settings(signing_secret=SecretStr(SECRET), public_url="https://media.example")
    task = tasks_pb2.Task(id="task_1", url="https://origin.example/in.mp4")
    task.inputs.add(kind="source")
    task.outputs.add(key="p/task_1/hls/master.m3u8", folder="p/task_1/hls")
    task.outputs.add(key="p/task_1/poster.png")
    shown = present(task, settings)
    assert shown.inputs[0].url == task.url and not task.outputs[0].HasField("url")  # a copy
    package, poster = shown.outputs
    assert package.url.startswith("https://media.example/files/")
    expiry, sig, key = link_parts(package.url)
    assert key == "p/task_1/hls/master.m3u8"
    assert signing.verify(SECRET, "get", expiry, sig, "p/task_1/hls/720p/seg-00001.m4s")
    assert not signing.verify(SECRET, "get", expiry, sig, "p/task_1/poster.png")
    expiry, sig, key = link_parts(poster.url)
    assert key == "p/task_1/poster.png" and signing.verify(SECRET, "get", expiry, sig, key)
    assert not signing.verify(SECRET, "get", expiry, sig, "p/task_1/hls/master.m3u8")
