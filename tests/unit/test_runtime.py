"""The shared runtime contract of ``taskkit``, proven with a test family on real parts.

Every family (media, tracks, intelligence) leans on the same promises: weighted progress that only
rises and never reads 100 before success; a handler's typed result landing in ``Task.result``; the
whole-task deadline; one consumer per kind, so a kind no worker runs stays queued and a rolling
deploy that adds a kind loses nothing; per-process resources opened before health says SERVING and
closed on shutdown; packages stored all or nothing under deterministic keys with bounded
concurrency; folder grants that cover a package and nothing else; and the command line.

The families here are test families with a fake resource and a result: their handlers copy a
small PNG or write a file, so nothing needs ffmpeg. Everything else is real: a nats-server per
test (``running_bus``), the gRPC server of ``taskkit.service.serve`` on a free port, and
``FileStorage`` in temp dirs. Inputs are links this deployment signed to files in that storage,
which the worker reads straight from storage (``taskkit.inputs``), so no HTTP origin is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image
from pydantic import SecretStr
from transmute.media.v1 import media_pb2, media_pb2_grpc
from transmute.tasks.v1 import tasks_pb2, tasks_pb2_grpc

from stack import free_port
from taskkit import service
from taskkit.api import servicer_for
from taskkit.api.tasks_servicer import present
from taskkit.config import Settings
from taskkit.errors import Cancelled, NotFound
from taskkit.records import Bus, TaskCreator, TaskStore, status
from taskkit.rpc import rpc_name
from taskkit.rpc.metadata import PROJECT_KEY
from taskkit.runtime import Family, Kind, Outcome, Output, TaskContext, Worker
from taskkit.runtime.family import budget
from taskkit.runtime.outcome import set_result
from taskkit.runtime.progress import Progress
from taskkit.runtime.uploads import store_outputs
from taskkit.storage import signing
from taskkit.storage.local import FileStorage
from tests.unit.nats_server import running_bus

SECRET = "test-signing-secret"
PROJECT = "p"
MEDIA_SERVICE = media_pb2.DESCRIPTOR.services_by_name["Media"].full_name


# --- the test family's pieces -------------------------------------------------------------------


@dataclass(frozen=True)
class NoOptions:
    """The test family's kinds take no options."""

    def to_dict(self) -> dict[str, Any]:
        return {}


def parse_none(raw: Mapping[str, Any]) -> NoOptions:
    return NoOptions(**raw)


def copy_output(ctx: TaskContext, name: str = "copy.png") -> Output:
    """The test family's one output: a copy of the input."""
    out = ctx.workdir / name
    out.write_bytes(ctx.input_path.read_bytes())
    return Output(path=out, name=name, entry=tasks_pb2.FileEntry(kind="image", type="image/png"))


def family_of(name: str, *kinds: Kind, resources: Mapping[str, Any] | None = None) -> Family:
    """A test family. It borrows the Media service descriptor: ``serve`` needs a generated
    service to register, and the base ``MediaServicer`` (every RPC unimplemented) is enough."""
    return Family(
        name=name,
        service_name=MEDIA_SERVICE,
        servicer=lambda helper: media_pb2_grpc.MediaServicer(),
        add_servicer=media_pb2_grpc.add_MediaServicer_to_server,
        kinds=kinds,
        resources=resources or {},
    )


def settings_for(tmp: Path, **overrides: Any) -> Settings:
    work = tmp / "work"
    work.mkdir(exist_ok=True)
    values: dict[str, Any] = {
        "signing_secret": SECRET,
        "storage_dir": tmp / "storage",
        "work_dir": work,
        "ack_wait_seconds": 2.0,
        "max_deliver": 2,
        "shutdown_grace_seconds": 1.0,
        **overrides,
    }
    return Settings(**values)


async def signed_input(storage: FileStorage, settings: Settings, tmp: Path) -> str:
    """A small PNG in storage and this deployment's signed link to it: the tasks' input."""
    png = tmp / "input.png"
    Image.new("RGB", (16, 16), (30, 160, 90)).save(png, format="PNG")
    await storage.put_file("p/inputs/input.png", png)
    return signing.signed_url(settings.base_url, SECRET, "p/inputs/input.png", ttl=600)


async def wait_for(store: TaskStore, task_id: str, *, timeout: float = 10.0) -> tasks_pb2.Task:
    """The task once it reached a terminal status."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = await store.get(PROJECT, task_id)
        if status.is_terminal(task.status):
            return task
        await asyncio.sleep(0.05)
    raise AssertionError(f"{task_id} did not finish within {timeout} s")


@contextlib.asynccontextmanager
async def running_worker(
    bus: Bus, settings: Settings, family: Family, kinds: tuple[Kind, ...] | None = None
) -> AsyncIterator[Worker]:
    worker = Worker(
        bus=bus,
        store=TaskStore(bus),
        storage=FileStorage(settings.storage_dir),
        settings=settings,
        family=family.name,
        kinds=family.kinds if kinds is None else kinds,
    )
    stop = asyncio.Event()
    job = asyncio.create_task(worker.run(stop))
    try:
        yield worker
    finally:
        stop.set()
        await asyncio.wait_for(job, timeout=10)


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[Bus]:
    async with running_bus(tmp_path / "nats") as connected:
        yield connected


# --- 1. progress --------------------------------------------------------------------------------


class Sink:
    def __init__(self) -> None:
        self.written: list[int] = []

    async def __call__(self, percent: int) -> None:
        self.written.append(percent)


async def test_progress_is_the_weighted_sum_of_planned_steps_and_never_goes_back() -> None:
    sink = Sink()
    progress = Progress(sink)
    progress.plan({"decode": 1, "package": 3})
    await progress.step("decode")(100)
    assert progress.percent == 25
    await progress.step("package")(50)
    assert progress.percent == 62  # 25 + 3/4 of 50, rounded down
    await progress.step("package")(10)  # a step reporting less does not lower the task
    await progress.step("decode")(0)
    assert progress.percent == 62
    await progress.step("package")(60)  # each step counts from its own highest report
    assert progress.percent == 70
    assert sink.written == [25, 62, 70]


async def test_progress_stops_at_99_until_the_worker_records_success() -> None:
    sink = Sink()
    progress = Progress(sink)
    progress.plan({"a": 1, "b": 1})
    await progress.step("a")(100)
    await progress.step("b")(250)  # out-of-range reports are clamped
    assert progress.percent == 99 and sink.written == [50, 99]


async def test_progress_single_step_default_and_bad_plans() -> None:
    sink = Sink()
    progress = Progress(sink)
    await progress.step()(40)
    await progress.step()(-5)
    await progress.step()(100)
    assert sink.written == [40, 99]
    with pytest.raises(KeyError, match="never"):
        progress.step("never")
    for weights in ({"a": 0}, {"a": 1, "b": -1}, {}):
        with pytest.raises(ValueError, match="positive"):
            progress.plan(weights)
    progress.plan({"only": 2})
    with pytest.raises(KeyError):
        progress.step()  # once steps are planned, the single default step is gone


# --- 2. a typed result --------------------------------------------------------------------------


async def test_a_handlers_typed_result_lands_in_the_task_result(bus: Bus, tmp_path: Path) -> None:
    async def judge(ctx: TaskContext) -> Outcome:
        return Outcome(outputs=[copy_output(ctx)], result=tasks_pb2.NsfwResult(nudity=True, categories=["x"]))

    family = family_of("rt", Kind("judge", parse_none, judge))
    settings = settings_for(tmp_path)
    store = TaskStore(bus)
    url = await signed_input(FileStorage(settings.storage_dir), settings, tmp_path)
    async with running_worker(bus, settings, family):
        created = await TaskCreator(bus=bus, store=store, family="rt").create(
            project=PROJECT, kind="judge", spec=tasks_pb2.TaskSpec(url=url), options={}
        )
        task = await wait_for(store, created.task.id)
    assert task.status == status.SUCCEEDED, task.error
    assert task.WhichOneof("result") == "nsfw"
    assert task.nsfw.nudity and list(task.nsfw.categories) == ["x"]
    assert [(o.key, o.kind, o.type) for o in task.outputs] == [
        (f"p/{task.id}/copy.png", "image", "image/png")
    ]
    assert task.outputs[0].filesize == (tmp_path / "input.png").stat().st_size


def test_set_result_refuses_a_message_that_is_not_a_result_type() -> None:
    task = tasks_pb2.Task()
    set_result(task, tasks_pb2.SummaryResult())
    assert task.WhichOneof("result") == "summary"
    with pytest.raises(TypeError, match=r"transmute\.tasks\.v1\.FileEntry"):
        set_result(task, tasks_pb2.FileEntry(kind="x"))


# --- 3. the whole-task deadline -----------------------------------------------------------------


async def test_a_handler_over_its_budget_fails_the_task_promptly(bus: Bus, tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    async def slow(ctx: TaskContext) -> Outcome:
        seen["remaining"] = ctx.remaining()
        for _ in range(10):  # 5 s in all, in several awaits
            await asyncio.sleep(0.5)
        seen["finished"] = True
        return Outcome()

    family = family_of("rt", Kind("slow", parse_none, slow))
    settings = settings_for(tmp_path, kind_timeouts={"slow": 0.5})
    store = TaskStore(bus)
    url = await signed_input(FileStorage(settings.storage_dir), settings, tmp_path)
    async with running_worker(bus, settings, family):
        started = time.monotonic()
        created = await TaskCreator(bus=bus, store=store, family="rt").create(
            project=PROJECT, kind="slow", spec=tasks_pb2.TaskSpec(url=url), options={}
        )
        task = await wait_for(store, created.task.id)
        took = time.monotonic() - started
    assert task.status == status.FAILED
    assert task.error == "processing took longer than the limit of 0.5 seconds"
    assert took < 2.5, f"the deadline should stop the task within ~0.5 s, took {took:.1f} s"
    assert 0 < seen["remaining"] <= 0.5 and "finished" not in seen
    assert task.attempts == 1  # a deadline is the input's fault: no retry


def test_budget_is_the_kinds_default_unless_overridden() -> None:
    kind = Kind("k", parse_none, lambda ctx: None, timeout_seconds=42.0)  # type: ignore[arg-type,return-value]
    assert budget(kind, Settings()) == 42.0
    assert budget(kind, Settings(kind_timeouts={"other": 1.0})) == 42.0
    assert budget(kind, Settings(kind_timeouts={"k": 0.5})) == 0.5


# --- 4. per-kind consumers ----------------------------------------------------------------------


async def test_a_kind_no_worker_runs_stays_queued_until_one_does(bus: Bus, tmp_path: Path) -> None:
    """TRANSMUTE_KINDS=alpha: beta tasks wait, untouched; a later worker for beta (a rolling deploy
    that adds the kind) runs them."""
    ran: list[str] = []

    async def handler(ctx: TaskContext) -> Outcome:
        ran.append(ctx.task.kind)
        return Outcome(outputs=[copy_output(ctx)])

    family = family_of("rt", Kind("alpha", parse_none, handler), Kind("beta", parse_none, handler))
    settings = settings_for(tmp_path)
    store = TaskStore(bus)
    creator = TaskCreator(bus=bus, store=store, family=family.name)
    url = await signed_input(FileStorage(settings.storage_dir), settings, tmp_path)
    alpha_only = family.selected(Settings(kinds="alpha"))
    assert [kind.name for kind in alpha_only] == ["alpha"]

    async with running_worker(bus, settings, family, alpha_only):
        beta = await creator.create(
            project=PROJECT, kind="beta", spec=tasks_pb2.TaskSpec(url=url), options={}
        )
        alpha = await creator.create(
            project=PROJECT, kind="alpha", spec=tasks_pb2.TaskSpec(url=url), options={}
        )
        assert (await wait_for(store, alpha.task.id)).status == status.SUCCEEDED
        await asyncio.sleep(1.5)
        waiting = await store.get(PROJECT, beta.task.id)
    assert waiting.status == status.QUEUED and waiting.attempts == 0 and not waiting.HasField("started_at")
    assert ran == ["alpha"]

    async with running_worker(bus, settings, family, family.selected(Settings(kinds="beta"))):
        done = await wait_for(store, beta.task.id)
    assert done.status == status.SUCCEEDED and done.attempts == 1
    assert ran == ["alpha", "beta"]


def test_selecting_an_unknown_kind_exits_naming_it() -> None:
    family = family_of("rt", Kind("alpha", parse_none, lambda ctx: None))  # type: ignore[arg-type,return-value]
    assert family.selected(Settings()) == family.kinds
    with pytest.raises(SystemExit, match=r"gamma \(it has alpha\)"):
        family.selected(Settings(kinds="alpha, gamma"))


# --- 5. per-process resources and health --------------------------------------------------------


class FakeModel:
    """The test family's fake resource: slow to open, recording its life."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.release = asyncio.Event()  # the test lets it finish opening once it saw NOT_SERVING
        self.instance = object()
        self.closed_by: asyncio.Task[Any] | None = None

    @contextlib.asynccontextmanager
    async def factory(self, settings: Settings) -> AsyncIterator[object]:
        self.events.append("opening")
        await asyncio.wait_for(self.release.wait(), timeout=10)
        await asyncio.sleep(0.2)
        self.events.append("opened")
        try:
            yield self.instance
        finally:
            self.events.append("closed")
            self.closed_by = asyncio.current_task()  # serve itself, not a garbage collector's hook


async def health_of(channel: grpc.aio.Channel, service_name: str) -> int:
    reply = await health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=service_name), timeout=2
    )
    return reply.status


async def wait_port_open(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.02)
        else:
            writer.close()
            await writer.wait_closed()
            return


async def test_serve_opens_resources_before_serving_and_closes_them_on_stop(bus: Bus, tmp_path: Path) -> None:
    model = FakeModel()
    seen: list[object] = []

    async def uses_model(ctx: TaskContext) -> Outcome:
        seen.append(ctx.resources["model"])
        return Outcome(outputs=[copy_output(ctx)])

    family = family_of(
        "rtserve",
        Kind("use", parse_none, uses_model, resources=("model",)),
        resources={"model": model.factory},
    )
    assert bus.nc.connected_url is not None
    port = free_port()
    settings = settings_for(
        tmp_path, role="all", grpc_host="127.0.0.1", grpc_port=port, nats_url=bus.nc.connected_url.geturl()
    )
    store = TaskStore(bus)
    url = await signed_input(FileStorage(settings.storage_dir), settings, tmp_path)
    stop = asyncio.Event()
    serving = asyncio.create_task(service.serve(family, settings, stop=stop))
    try:
        await wait_port_open(port)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
            assert await health_of(channel, "") == not_serving
            assert await health_of(channel, MEDIA_SERVICE) == not_serving
            assert model.events == ["opening"]

            # A task created now waits: the worker pulls only once its resources are open.
            created = await TaskCreator(bus=bus, store=store, family=family.name).create(
                project=PROJECT, kind="use", spec=tasks_pb2.TaskSpec(url=url), options={}
            )
            await asyncio.sleep(0.5)
            assert (await store.get(PROJECT, created.task.id)).status == status.QUEUED and seen == []
            assert await health_of(channel, "") == not_serving

            model.release.set()
            deadline = time.monotonic() + 5
            while await health_of(channel, "") != health_pb2.HealthCheckResponse.SERVING:
                assert time.monotonic() < deadline, "health never said SERVING"
                await asyncio.sleep(0.02)
            assert model.events == ["opening", "opened"]
            assert await health_of(channel, MEDIA_SERVICE) == health_pb2.HealthCheckResponse.SERVING

            # The shared Tasks service is served too; poll the task through it.
            tasks = tasks_pb2_grpc.TasksStub(channel)
            deadline = time.monotonic() + 10
            while True:
                task = await tasks.GetTask(
                    tasks_pb2.GetTaskRequest(id=created.task.id),
                    metadata=((PROJECT_KEY, PROJECT),),
                    timeout=2,
                )
                if status.is_terminal(task.status) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
            assert task.status == status.SUCCEEDED, task.error
            assert seen == [model.instance]
            assert task.outputs[0].url.startswith(settings.base_url + "/files/")
    finally:
        stop.set()
        await asyncio.wait_for(serving, timeout=10)
    assert model.events == ["opening", "opened", "closed"]
    assert model.closed_by is serving, "serve should close its resources before it returns"


def test_a_worker_opens_only_the_resources_of_the_kinds_it_runs() -> None:
    """A GPU host running only ``speech`` must not load the nsfw model, and the reverse."""
    model, other = FakeModel(), FakeModel()

    async def handler(ctx: TaskContext) -> Outcome:
        return Outcome()

    family = family_of(
        "rtpick",
        Kind("a", parse_none, handler, resources=("model",)),
        Kind("b", parse_none, handler, resources=("other",)),
        Kind("c", parse_none, handler),
        resources={"model": model.factory, "other": other.factory},
    )
    assert set(family.resources_for(family.kinds)) == {"model", "other"}
    assert set(family.resources_for((family.kind("a"),))) == {"model"}
    assert family.resources_for((family.kind("c"),)) == {}
    broken = family_of("rtbroken", Kind("d", parse_none, handler, resources=("missing",)))
    with pytest.raises(KeyError, match="missing"):
        broken.resources_for(broken.kinds)


# --- 6. package outputs -------------------------------------------------------------------------


def make_package(root: Path, files: int = 30, tag: str = "v1") -> tuple[Path, int]:
    """An HLS-like folder: master.m3u8 (and manifest.mpd) plus segments in nested folders."""
    root.mkdir(parents=True)
    (root / "master.m3u8").write_text(f"#EXTM3U {tag}\n")
    (root / "manifest.mpd").write_text(f"<MPD {tag}/>\n")
    for i in range(files - 2):
        segment = root / f"{i % 3 * 360 + 360}p" / "segs" / f"seg-{i:05d}.m4s"
        segment.parent.mkdir(parents=True, exist_ok=True)
        segment.write_bytes(f"{tag}:{i}:".encode() * (i + 1))
    return root, sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def package_output(package: Path, entry_point: str = "master.m3u8", name: str = "hls") -> Output:
    return Output(
        path=package / entry_point,
        name=name,
        entry=tasks_pb2.FileEntry(kind="video", type="application/x-mpegURL"),
        package=package,
    )


def stored_under(root: Path, prefix: str, *, staging: bool = False) -> list[str]:
    """The keys the storage holds under ``prefix`` (with ``staging``, also its hidden temp files)."""
    base = root / prefix
    files = [p for p in base.rglob("*") if p.is_file() and (staging or not p.name.startswith("."))]
    return sorted(p.relative_to(root).as_posix() for p in files)


class CountingStorage(FileStorage):
    """A real FileStorage that records how many puts run at once, and can fail the n-th put."""

    def __init__(self, root: Path, *, fail_at: int | None = None) -> None:
        super().__init__(root)
        self.fail_at = fail_at
        self.calls = 0
        self.active = 0
        self.max_active = 0

    async def put_file(self, key: str, src: Path) -> int:
        self.calls += 1
        if self.calls == self.fail_at:
            raise OSError("the disk is full")
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            await asyncio.sleep(0.005)  # long enough for the other puts to overlap
            return await super().put_file(key, src)
        finally:
            self.active -= 1


async def test_a_package_is_one_entry_with_every_file_stored(tmp_path: Path) -> None:
    package, total = make_package(tmp_path / "out")
    storage = CountingStorage(tmp_path / "storage")
    stored = await store_outputs(
        storage, "p/task_1", [package_output(package)], cancel=asyncio.Event(), concurrency=3
    )
    [entry] = stored.entries
    assert entry.key == "p/task_1/hls/master.m3u8" and entry.folder == "p/task_1/hls"
    assert entry.filesize == total
    files = sorted(p.relative_to(package).as_posix() for p in package.rglob("*") if p.is_file())
    assert len(files) == 30
    assert stored_under(tmp_path / "storage", "p/task_1") == [f"p/task_1/hls/{f}" for f in files]
    for f in files:
        assert storage.local_path(f"p/task_1/hls/{f}").read_bytes() == (package / f).read_bytes()
    assert storage.max_active == 3, "uploads should run concurrently, never more than the limit"


async def test_two_entry_points_of_one_package_store_it_once(tmp_path: Path) -> None:
    package, total = make_package(tmp_path / "cmaf")
    storage = CountingStorage(tmp_path / "storage")
    outputs = [
        package_output(package, "master.m3u8", "cmaf"),
        package_output(package, "manifest.mpd", "cmaf"),
    ]
    stored = await store_outputs(storage, "p/task_1", outputs, cancel=asyncio.Event(), concurrency=4)
    assert [(e.key, e.folder, e.filesize) for e in stored.entries] == [
        ("p/task_1/cmaf/master.m3u8", "p/task_1/cmaf", total),
        ("p/task_1/cmaf/manifest.mpd", "p/task_1/cmaf", total),
    ]
    assert storage.calls == 30 and len(stored.keys) == 30


async def test_a_failure_midway_deletes_everything_stored(tmp_path: Path) -> None:
    package, _ = make_package(tmp_path / "out")
    plain = tmp_path / "poster.png"
    plain.write_bytes(b"png")
    outputs = [
        Output(path=plain, name="poster.png", entry=tasks_pb2.FileEntry(kind="image")),
        package_output(package),
    ]
    storage = CountingStorage(tmp_path / "storage", fail_at=10)
    with pytest.raises(OSError, match="disk is full"):
        await store_outputs(storage, "p/task_1", outputs, cancel=asyncio.Event(), concurrency=4)
    assert storage.calls >= 10
    assert stored_under(tmp_path / "storage", "p/task_1") == []
    for key in ("p/task_1/poster.png", "p/task_1/hls/master.m3u8"):
        with pytest.raises(NotFound):
            storage.local_path(key)


async def test_a_cancelled_put_leaves_no_staging_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A put cancelled mid-copy must not litter storage: the copy thread runs on after the cancel."""
    real_copy = shutil.copyfile

    def slow_copy(src: Path, dst: Path) -> object:
        time.sleep(0.2)  # the copy thread is busy when the cancel arrives
        return real_copy(src, dst)

    monkeypatch.setattr(shutil, "copyfile", slow_copy)
    src = tmp_path / "seg.m4s"
    src.write_bytes(b"x" * 1000)
    storage = FileStorage(tmp_path / "storage")
    put = asyncio.create_task(storage.put_file("p/task_1/hls/seg.m4s", src))
    await asyncio.sleep(0.05)
    put.cancel()
    with pytest.raises(asyncio.CancelledError):
        await put
    await asyncio.sleep(0.4)  # the orphaned thread finishes its copy
    assert stored_under(tmp_path / "storage", "p/task_1", staging=True) == []


async def test_a_cancelled_task_stores_nothing(tmp_path: Path) -> None:
    package, _ = make_package(tmp_path / "out")
    storage = CountingStorage(tmp_path / "storage")
    cancel = asyncio.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        await store_outputs(storage, "p/task_1", [package_output(package)], cancel=cancel, concurrency=4)
    assert storage.calls == 0 and stored_under(tmp_path / "storage", "p/task_1") == []


async def test_a_redo_overwrites_the_same_keys(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path / "storage")
    first, _ = make_package(tmp_path / "first", tag="first")
    second, total = make_package(tmp_path / "second", tag="second")
    once = await store_outputs(
        storage, "p/task_1", [package_output(first)], cancel=asyncio.Event(), concurrency=4
    )
    again = await store_outputs(
        storage, "p/task_1", [package_output(second)], cancel=asyncio.Event(), concurrency=4
    )
    assert sorted(once.keys) == sorted(again.keys) and again.entries[0].filesize == total
    assert len(stored_under(tmp_path / "storage", "p/task_1")) == 30
    for key in again.keys:
        relative = key.removeprefix("p/task_1/hls/")
        assert storage.local_path(key).read_bytes() == (second / relative).read_bytes()
    assert storage.local_path("p/task_1/hls/master.m3u8").read_text() == "#EXTM3U second\n"


# --- 7. the signed folder grant -----------------------------------------------------------------


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


# --- 8. the command line ------------------------------------------------------------------------


def test_main_refuses_an_unknown_role(capsys: pytest.CaptureFixture[str]) -> None:
    family = family_of("rt", Kind("alpha", parse_none, lambda ctx: None))  # type: ignore[arg-type,return-value]
    with pytest.raises(SystemExit) as exited:
        service.main(family, ["--role", "bogus"])
    assert exited.value.code == 2
    assert "invalid choice: 'bogus'" in capsys.readouterr().err


def test_a_family_servicer_is_generated_from_its_kinds() -> None:
    """One Create RPC per kind, named from the kind; a kind the proto lacks fails at import."""
    servicer = servicer_for(media_pb2_grpc.MediaServicer, ["video", "adaptive_video"])
    assert rpc_name("adaptive_video") == "CreateAdaptiveVideoTask"
    assert "CreateVideoTask" in vars(servicer) and "CreateAdaptiveVideoTask" in vars(servicer)
    assert vars(servicer)["CreateImageTask"] is not vars(servicer)["CreateVideoTask"]
    with pytest.raises(TypeError, match="no CreateSpeechTask RPC for kind speech"):
        servicer_for(media_pb2_grpc.MediaServicer, ["speech"])
