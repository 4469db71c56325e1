"""The media kinds end to end on each storage backend: one small stack per backend (``file``,
``s3`` on a real SeaweedFS, ``nats`` on the stack's own JetStream), with every output read back
through its signed link, the package kinds read the way a player reads them (an HLS playlist, then
relative references through the folder grant; a thumbnails storyboard, then its sprite), an upload
by signed PUT used as a task's input, Range requests, and a failed task that leaves nothing stored.

On ``s3`` the stack runs with ``TRANSMUTE_S3_PRESIGNED_DOWNLOADS``: single-file links answer 307
to a presigned S3 GET, folder grants are streamed by the gateway.

tracks_service runs without intelligence_service (no models to load): ``thumbnails`` needs no
child task.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin

import httpx
import nats
import pytest
from nats.js.errors import NotFoundError

from stack import Stack, StackConfig
from stack.seaweed import SeaweedS3
from taskkit.config import Settings
from taskkit.storage import open_storage, signing
from taskkit.storage.s3 import S3Storage
from tests.conftest import create, wait_done
from tests.support import Corpus, Origin

PROJECT = "default"  # the stack's single dev key
MAX_INPUT_BYTES = 5_000_000


class Backend:
    """A running stack on one backend, and a way to list what it stored."""

    def __init__(self, name: str, stack: Stack, s3: SeaweedS3 | None) -> None:
        self.name = name
        self.stack = stack
        self.s3 = s3

    def stored(self, prefix: str) -> list[str]:
        """Every key under ``prefix``, read from the backend itself."""
        return asyncio.run(self._stored(prefix))

    async def _stored(self, prefix: str) -> list[str]:
        if self.name == "file":
            root = self.stack.config.root / "storage"
            keys = (p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
            return sorted(key for key in keys if key.startswith(prefix))
        if self.name == "s3":
            assert self.s3 is not None
            storage = open_storage(Settings(**_s3_settings(self.s3)))  # type: ignore[arg-type]
            assert isinstance(storage, S3Storage)
            async with storage:
                answer = await storage.client.list_objects_v2(Bucket=self.s3.bucket, Prefix=prefix)
            return sorted(item["Key"] for item in answer.get("Contents", []))
        nc = await nats.connect(self.stack.nats_url, connect_timeout=5)
        try:
            store = await nc.jetstream(timeout=5).object_store("transmute")
            try:
                infos = await store.list(ignore_deletes=True)
            except NotFoundError:
                return []
        finally:
            await nc.close()
        return sorted(info.name for info in infos if info.name.startswith(prefix))


def _s3_settings(s3: SeaweedS3) -> dict[str, Any]:
    return {key.removeprefix("TRANSMUTE_").lower(): value for key, value in s3.env().items()}


@pytest.fixture(scope="module", params=["file", "s3", "nats"])
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    root = tmp_path_factory.mktemp(f"stack-{request.param}")
    env = {
        "TRANSMUTE_STORAGE_BACKEND": request.param,
        "TRANSMUTE_MAX_INPUT_BYTES": str(MAX_INPUT_BYTES),
        "TRANSMUTE_WORKER_CONCURRENCY": "2",
        "TRANSMUTE_SHUTDOWN_GRACE_SECONDS": "5",
    }
    s3 = SeaweedS3(root / "seaweed").start() if request.param == "s3" else None
    if s3 is not None:
        env.update(s3.env(), TRANSMUTE_S3_PRESIGNED_DOWNLOADS="true")
    config = StackConfig.fresh(
        root,
        "test",
        intelligence=False,
        tracks=True,
        env=env,
    )
    running = Stack(config)
    try:
        running.start()
        yield Backend(request.param, running, s3)
    finally:
        running.stop()
        if s3 is not None:
            s3.stop()


@pytest.fixture(scope="module")
def client(backend: Backend) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {backend.stack.config.api_key}"}
    with httpx.Client(base_url=backend.stack.base_url, headers=headers, timeout=30.0) as api:
        yield api


@pytest.fixture(scope="module")
def tasks(client: httpx.Client, origin: Origin) -> dict[str, dict[str, Any]]:
    """One task of each media kind, all submitted first, then awaited."""
    specs: dict[str, tuple[str, str, dict[str, Any]]] = {
        "video": ("video", origin.url("clip_av.mp4"), {"width": 160}),
        "image": ("image", origin.url("png_alpha.png"), {"width": 100, "format": "webp"}),
        "audio": ("audio", origin.url("audio_stereo.mp3"), {"format": "mp3"}),
        "adaptive_video": ("adaptive_video", origin.url("clip_av.mp4"), {"renditions": [{"height": 144}]}),
        "thumbnails": ("thumbnails", origin.url("clip_av.mp4"), {"interval": 0.5, "columns": 2, "rows": 1}),
        "broken": ("video", origin.url("index.html"), {}),
    }
    created = {name: create(client, kind, url, **options) for name, (kind, url, options) in specs.items()}
    return {name: wait_done(client, task["id"], timeout=180) for name, task in created.items()}


def fetch(url: str, **headers: str) -> httpx.Response:
    """What a browser gets: redirects (an S3 presigned link) followed."""
    response = httpx.get(url, headers=headers, timeout=30.0, follow_redirects=True)
    assert response.status_code in (200, 206), (response.status_code, response.text[:300])
    return response


def succeeded(task: dict[str, Any]) -> dict[str, Any]:
    assert task["status"] == "succeeded", task.get("error")
    (entry,) = task["outputs"]
    return entry  # type: ignore[no-any-return]


@pytest.mark.parametrize("kind", ["video", "image", "audio"])
def test_each_kind_is_stored_and_served(
    backend: Backend, tasks: dict[str, dict[str, Any]], kind: str
) -> None:
    entry = succeeded(tasks[kind])
    body = fetch(entry["url"]).content
    assert len(body) == entry["filesize"] > 0
    task_id = tasks[kind]["id"]
    assert backend.stored(f"{PROJECT}/{task_id}/") != []


def test_single_file_links_go_straight_to_s3_only_there(
    backend: Backend, tasks: dict[str, dict[str, Any]]
) -> None:
    first = httpx.get(succeeded(tasks["video"])["url"], timeout=30.0)
    if backend.name == "s3":
        assert first.status_code == 307
        assert first.headers["location"].startswith(backend.s3.endpoint if backend.s3 else "")
    else:
        assert first.status_code == 200


@pytest.mark.parametrize(
    ("spec", "start", "end"), [("bytes=0-99", 0, 99), ("bytes=1000-", 1000, None), ("bytes=-10", -10, None)]
)
def test_range_requests_return_the_bytes(
    tasks: dict[str, dict[str, Any]], spec: str, start: int, end: int | None
) -> None:
    entry = succeeded(tasks["video"])
    whole = fetch(entry["url"]).content
    part = fetch(entry["url"], Range=spec)
    expected = whole[start : None if end is None else end + 1]
    assert part.status_code == 206 and part.content == expected
    first = start % len(whole)
    assert part.headers["content-range"] == f"bytes {first}-{first + len(expected) - 1}/{len(whole)}"


def test_a_package_is_read_like_a_player_reads_it(backend: Backend, tasks: dict[str, dict[str, Any]]) -> None:
    """Master playlist, then its media playlist, init segment and a segment, every one resolved
    relative to the link before it, through the folder grant (never a redirect)."""
    entry = succeeded(tasks["adaptive_video"])
    master = httpx.get(entry["url"], timeout=30.0)
    assert master.status_code == 200 and master.text.startswith("#EXTM3U")
    variant_url = urljoin(entry["url"], _uris(master.text)[0])
    variant = httpx.get(variant_url, timeout=30.0)
    assert variant.status_code == 200, variant.text
    for uri in _uris(variant.text)[:2]:
        segment = httpx.get(urljoin(variant_url, uri), timeout=30.0)
        assert segment.status_code == 200 and len(segment.content) > 0
        ranged = httpx.get(urljoin(variant_url, uri), headers={"Range": "bytes=0-7"}, timeout=30.0)
        assert ranged.status_code == 206 and ranged.content == segment.content[:8]
    keys = backend.stored(f"{PROJECT}/{tasks['adaptive_video']['id']}/")
    assert any(key.endswith("master.m3u8") for key in keys) and len(keys) >= 4


def test_a_storyboard_is_read_like_a_player_reads_it(
    backend: Backend, tasks: dict[str, dict[str, Any]]
) -> None:
    """The WebVTT storyboard, then each sprite it names, resolved relative to the storyboard's link
    through the folder grant; the JSON storyboard beside it."""
    task = tasks["thumbnails"]
    assert task["status"] == "succeeded", task.get("error")
    vtt_entry, json_entry, *sheets = task["outputs"]
    vtt = httpx.get(vtt_entry["url"], timeout=30.0)
    assert vtt.status_code == 200 and vtt.text.startswith("WEBVTT")
    named = sorted({line.split("#", 1)[0] for line in vtt.text.splitlines() if "#xywh=" in line})
    assert named == ["sprite_0.jpg", "sprite_1.jpg"]  # 4 tiles on 2x1 grids
    for name, entry in zip(named, sheets, strict=True):
        sprite = httpx.get(urljoin(vtt_entry["url"], name), timeout=30.0)
        assert sprite.status_code == 200 and sprite.content[:2] == b"\xff\xd8"  # a JPEG
        assert len(sprite.content) == entry["filesize"]
    board = httpx.get(json_entry["url"], timeout=30.0).json()
    assert [sheet["url"] for sheet in board["sheets"]] == named
    keys = backend.stored(f"{PROJECT}/{task['id']}/")
    assert sorted(key.rsplit("/", 1)[1] for key in keys) == sorted(
        ["storyboard.json", "storyboard.vtt", *named]
    )


def _uris(playlist: str) -> list[str]:
    """The references of an HLS playlist: plain lines and ``URI="…"`` attributes (EXT-X-MAP)."""
    found = []
    for line in playlist.splitlines():
        if line.startswith("#EXT-X-MAP:") and 'URI="' in line:
            found.append(line.split('URI="', 1)[1].split('"', 1)[0])
        elif line and not line.startswith("#"):
            found.append(line)
    return found


def test_a_failed_task_leaves_nothing_stored(backend: Backend, tasks: dict[str, dict[str, Any]]) -> None:
    assert tasks["broken"]["status"] == "failed"
    assert backend.stored(f"{PROJECT}/{tasks['broken']['id']}/") == []


def test_an_upload_by_signed_put_is_served_and_usable_as_input(
    backend: Backend, client: httpx.Client, corpus: Corpus
) -> None:
    secret = backend.stack.config.signing_secret
    key = f"{PROJECT}/uploads/{secrets.token_hex(4)}/clip.mp4"
    put_url = backend.stack.base_url + signing.signed_path(secret, key, expiry=2_000_000_000, method="put")
    data = corpus.clip_av.read_bytes()
    answer = httpx.put(put_url, content=iter([data[:70_000], data[70_000:]]), timeout=30.0)
    assert answer.status_code == 201, answer.text
    uploaded = answer.json()
    assert uploaded["filesize"] == len(data)
    assert fetch(uploaded["url"]).content == data
    assert fetch(uploaded["url"], Range="bytes=10-19").content == data[10:20]
    assert backend.stored(key) == [key]
    task = wait_done(client, create(client, "video", uploaded["url"], width=160)["id"], timeout=120)
    assert succeeded(task)["filesize"] > 0


def test_an_upload_over_the_limit_is_refused_and_not_stored(backend: Backend) -> None:
    secret = backend.stack.config.signing_secret
    key = f"{PROJECT}/uploads/too-big.bin"
    put_url = backend.stack.base_url + signing.signed_path(secret, key, expiry=2_000_000_000, method="put")
    chunks = (b"\0" * 1_000_000 for _ in range(6))
    answer = httpx.put(put_url, content=chunks, timeout=30.0)
    assert answer.status_code == 400, answer.text
    assert json.loads(answer.text)["message"].startswith("The upload is larger")
    assert backend.stored(key) == []


def test_missing_files_are_404(backend: Backend) -> None:
    secret = backend.stack.config.signing_secret
    url = backend.stack.base_url + signing.signed_path(secret, f"{PROJECT}/none/x.mp4", expiry=2_000_000_000)
    assert httpx.get(url, timeout=30.0).status_code == 404
    assert httpx.head(url, timeout=30.0).status_code == 404


def test_head_gives_size_and_type(tasks: dict[str, dict[str, Any]]) -> None:
    entry = succeeded(tasks["image"])
    head = httpx.head(entry["url"], timeout=30.0)
    assert head.status_code == 200
    assert int(head.headers["content-length"]) == entry["filesize"]
    assert head.headers["content-type"] == "image/webp" and head.content == b""


def test_a_kind_whose_child_service_is_not_deployed_fails_at_once(
    client: httpx.Client, origin: Origin
) -> None:
    """tracks_service runs here without intelligence_service: subtitles needs a speech child."""
    task = wait_done(client, create(client, "subtitles", origin.url("clip_av.mp4"))["id"], timeout=60)
    assert task["status"] == "failed"
    assert task["error"] == "this deployment does not run speech, which subtitles needs"
