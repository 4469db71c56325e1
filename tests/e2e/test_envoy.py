"""Real traffic through a real envoy in front of the real stack, with mutual TLS on the gRPC ports.

The stack (nats-server, media_service, gateway) runs with ``TRANSMUTE_GRPC_TLS_*`` on its gRPC
server and ``TRANSMUTE_GRPC_CLIENT_*`` on the gateway's channels; envoy, rendered by
``stack.envoy.render``, presents its own client certificate to media (health checks included).
Through envoy's public listener: tasks are created and read, task events stream until the task
ends, an outside ``transmute-project`` header never reaches a gateway and bodies over the limit are
refused. Through its internal listener: Media and Tasks gRPC calls, and the same calls as REST
through the gRPC-JSON transcoder. And envoy checks who answers: a media upstream presenting another
family's certificate (same CA, valid chain) is refused, one presenting media's own is not.
"""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from transmute.media.v1 import media_pb2, media_pb2_grpc
from transmute.tasks.v1 import tasks_pb2, tasks_pb2_grpc

from stack import Stack, StackConfig, free_port, wait_port
from stack.envoy import EnvoyConfig, TlsFiles, envoy_argv, render
from taskkit.rpc.metadata import PROJECT_KEY
from tests.conftest import create, wait_done
from tests.support import Corpus, Origin
from tests.support.certs import Certs, KeyPair, make_certs
from tests.support.sse import read_sse

DESCRIPTOR = Path(__file__).resolve().parents[2] / "gen" / "transmute.pb"
BODY_LIMIT = 64 * 1024
OTHER_KEY = "ittybit_other_" + secrets.token_hex(8)
_STOP_TIMEOUT_S = 15


@dataclass(frozen=True)
class Envoy:
    config: EnvoyConfig

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.config.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"http://127.0.0.1:{self.config.grpc_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.config.grpc_port}"

    def stats(self, prefix: str) -> dict[str, int]:
        reply = httpx.get(
            f"http://127.0.0.1:{self.config.admin_port}/stats", params={"filter": prefix}, timeout=5.0
        )
        reply.raise_for_status()
        found = {}
        for line in reply.text.splitlines():
            name, _, value = line.partition(": ")
            if value.isdigit():
                found[name] = int(value)
        return found


def run_envoy(config: EnvoyConfig, folder: Path) -> Iterator[Envoy]:
    """Render ``config`` under ``folder``, run envoy on it until the generator is closed."""
    path = folder / "envoy.yaml"
    path.write_text(render(config))
    with (folder / "envoy.log").open("ab") as log:
        proc = subprocess.Popen(
            envoy_argv(path), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_port(config.http_port, proc, "envoy")
        wait_port(config.grpc_port, proc, "envoy")
        yield Envoy(config)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def envoy_config(
    folder: Path, *, gateways: tuple[str, ...], media: tuple[str, ...], tls: TlsFiles
) -> EnvoyConfig:
    return EnvoyConfig(
        gateways=gateways,
        media=media,
        descriptor=DESCRIPTOR,
        access_log=folder / "access.log",
        http_port=free_port(),
        grpc_port=free_port(),
        admin_port=free_port(),
        max_body_bytes=BODY_LIMIT,
        upstream_tls=tls,
    )


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def envoy_tls(certs: Certs) -> TlsFiles:
    return TlsFiles(cert=certs.client_cert, key=certs.client_key, ca=certs.ca)


@pytest.fixture(scope="module")
def mtls_stack(tmp_path_factory: pytest.TempPathFactory, certs: Certs) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("envoy-stack")
    keys_file = root / "keys.json"
    keys_file.write_text(json.dumps({OTHER_KEY: "other"}))
    config = StackConfig.fresh(
        root,
        "test",
        intelligence=False,
        tracks=False,
        env={
            "TRANSMUTE_API_KEYS_FILE": str(keys_file),
            "TRANSMUTE_GRPC_TLS_CERT": str(certs.service("media").cert),
            "TRANSMUTE_GRPC_TLS_KEY": str(certs.service("media").key),
            "TRANSMUTE_GRPC_TLS_CA": str(certs.ca),
            "TRANSMUTE_GRPC_CLIENT_CERT": str(certs.client_cert),
            "TRANSMUTE_GRPC_CLIENT_KEY": str(certs.client_key),
            "TRANSMUTE_GRPC_CLIENT_CA": str(certs.ca),
        },
    )
    with Stack(config) as running:
        yield running


@pytest.fixture(scope="module")
def envoy(
    mtls_stack: Stack, envoy_tls: TlsFiles, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Envoy]:
    folder = tmp_path_factory.mktemp("envoy")
    c = mtls_stack.config
    config = envoy_config(
        folder, gateways=(f"127.0.0.1:{c.http_port}",), media=(f"127.0.0.1:{c.grpc_port}",), tls=envoy_tls
    )
    yield from run_envoy(config, folder)


def client(base_url: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30.0)


@pytest.fixture(scope="module")
def api(envoy: Envoy, mtls_stack: Stack) -> Iterator[httpx.Client]:
    with client(envoy.http_url, mtls_stack.config.api_key) as through_envoy:
        yield through_envoy


@pytest.fixture(scope="module")
def other_api(envoy: Envoy) -> Iterator[httpx.Client]:
    with client(envoy.http_url, OTHER_KEY) as through_envoy:
        yield through_envoy


def test_create_and_read_a_task_through_envoy(api: httpx.Client, origin: Origin, corpus: Corpus) -> None:
    task = create(api, "image", origin.url(corpus.png_small.name), width=32)
    done = wait_done(api, task["id"])
    assert done["status"] == "succeeded", done
    assert api.get(f"/tasks/{task['id']}").json()["id"] == task["id"]


def test_task_events_stream_through_envoy_until_the_task_ends(
    api: httpx.Client, origin: Origin, corpus: Corpus
) -> None:
    task = create(api, "video", origin.url(corpus.clip_av.name), width=160)
    events = read_sse(api, f"/tasks/{task['id']}/events", timeout=120)
    assert events[0].topic == "task.created"
    assert events[-1].topic == "task.succeeded" and events[-1].data["status"] == "succeeded"
    assert len(events) > 2


def test_a_project_header_from_outside_does_not_pick_the_project(
    api: httpx.Client, other_api: httpx.Client, origin: Origin, corpus: Corpus
) -> None:
    theirs = create(other_api, "image", origin.url(corpus.png_small.name), width=32)
    reply = api.get(f"/tasks/{theirs['id']}", headers={PROJECT_KEY: "other"})
    assert reply.status_code == 404, reply.text
    assert other_api.get(f"/tasks/{theirs['id']}").status_code == 200


def test_envoy_strips_the_project_header_before_any_gateway_sees_it(
    envoy_tls: TlsFiles, tmp_path: Path, corpus: Corpus
) -> None:
    """An origin server stands in for the gateway and records what arrives."""
    with Origin(corpus.root) as recorder:
        config = envoy_config(
            tmp_path, gateways=(f"127.0.0.1:{recorder.port}",), media=("127.0.0.1:1",), tls=envoy_tls
        )
        for proxy in run_envoy(config, tmp_path):
            headers = {PROJECT_KEY: "other", "x-kept": "yes"}
            httpx.get(f"{proxy.http_url}/tasks", headers=headers, timeout=10.0)
        (seen,) = [r.headers for r in recorder.requests if r.path == "/tasks"]
    names = {name.lower() for name in seen}
    assert "x-kept" in names
    assert PROJECT_KEY not in names


def test_a_body_over_the_limit_is_refused_by_envoy(
    api: httpx.Client, mtls_stack: Stack, origin: Origin, corpus: Corpus
) -> None:
    body = {"kind": "image", "url": origin.url(corpus.png_small.name), "metadata": {"x": "a" * BODY_LIMIT}}
    refused = api.post("/tasks", json=body)
    assert refused.status_code == 413, refused.text
    # The gateway's own limit is larger: straight to it, the same body gets past the size check.
    with client(mtls_stack.base_url, mtls_stack.config.api_key) as direct:
        assert direct.post("/tasks", json=body).status_code != 413


async def test_grpc_listener_serves_media_and_tasks_over_health_checked_mtls_upstreams(
    envoy: Envoy, mtls_stack: Stack, origin: Origin, corpus: Corpus
) -> None:
    task = await _create_and_get(envoy.grpc_target, origin.url(corpus.png_small.name))
    assert task.id.startswith("task_") and task.kind == "image"
    stats = envoy.stats("cluster.media.")
    assert stats["cluster.media.health_check.success"] >= 1
    assert stats["cluster.media.membership_healthy"] == 1
    # The media port itself takes no plaintext caller: only envoy's certificate gets through.
    assert await _plaintext_call(f"127.0.0.1:{mtls_stack.config.grpc_port}") == grpc.StatusCode.UNAVAILABLE


def test_transcoder_serves_rest_create_and_get(
    envoy: Envoy, api: httpx.Client, origin: Origin, corpus: Corpus
) -> None:
    with httpx.Client(base_url=envoy.grpc_url, headers={PROJECT_KEY: "default"}, timeout=30.0) as rest:
        created = rest.post("/tasks/image", json={"spec": {"url": origin.url(corpus.png_small.name)}})
        assert created.status_code == 200, created.text
        task_id = created.json()["id"]
        read = rest.get(f"/tasks/{task_id}")
        assert read.status_code == 200, read.text
        assert read.json()["id"] == task_id and read.json()["kind"] == "image"
        # Without a project the service refuses, and the transcoder says so in HTTP.
        nameless = rest.get(f"/tasks/{task_id}", headers={PROJECT_KEY: ""})
        assert nameless.status_code == 400, nameless.text
    # The REST create landed in the project it named: the public API sees it with that key.
    assert api.get(f"/tasks/{task_id}").status_code == 200


async def _create_and_get(target: str, url: str) -> tasks_pb2.Task:
    meta = ((PROJECT_KEY, "default"),)
    async with grpc.aio.insecure_channel(target) as channel:
        created = await media_pb2_grpc.MediaStub(channel).CreateImageTask(
            media_pb2.CreateImageTaskRequest(spec=tasks_pb2.TaskSpec(url=url)), metadata=meta, timeout=10
        )
        read: tasks_pb2.Task = await tasks_pb2_grpc.TasksStub(channel).GetTask(
            tasks_pb2.GetTaskRequest(id=created.id), metadata=meta, timeout=10
        )
        return read


async def _plaintext_call(target: str) -> grpc.StatusCode:
    async with grpc.aio.insecure_channel(target) as channel:
        try:
            await tasks_pb2_grpc.TasksStub(channel).GetTask(tasks_pb2.GetTaskRequest(id="x"), timeout=5)
        except grpc.aio.AioRpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


@contextmanager
def family_server(pair: KeyPair, ca: Path) -> Iterator[int]:
    """A gRPC server on a free port presenting ``pair`` and requiring a client certificate of
    ``ca``, SERVING for Media's health check, answering ``Media/CreateImageTask`` with b"answered"."""
    server = grpc.server(ThreadPoolExecutor(max_workers=4))
    checks = health.HealthServicer()
    checks.set("transmute.media.v1.Media", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(checks, server)
    answer = grpc.unary_unary_rpc_method_handler(lambda request, context: b"answered")
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("transmute.media.v1.Media", {"CreateImageTask": answer}),)
    )
    credentials = grpc.ssl_server_credentials(
        [(pair.key.read_bytes(), pair.cert.read_bytes())],
        root_certificates=ca.read_bytes(),
        require_client_auth=True,
    )
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    try:
        yield port
    finally:
        server.stop(grace=None)


def _media_call(target: str) -> grpc.StatusCode:
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary("/transmute.media.v1.Media/CreateImageTask")
        try:
            assert call(b"", metadata=((PROJECT_KEY, "default"),), timeout=10) == b"answered"
        except grpc.RpcError as exc:
            return exc.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


@pytest.mark.parametrize(
    ("presented", "expected"),
    [
        ("media", grpc.StatusCode.OK),
        ("intelligence", grpc.StatusCode.UNAVAILABLE),
        ("tracks", grpc.StatusCode.UNAVAILABLE),
        ("gateway", grpc.StatusCode.UNAVAILABLE),
    ],
)
def test_a_media_upstream_must_present_medias_name(
    presented: str, expected: grpc.StatusCode, certs: Certs, envoy_tls: TlsFiles, tmp_path: Path
) -> None:
    """Every certificate here has a valid chain from the deployment's CA; only the name differs."""
    with family_server(certs.service(presented), certs.ca) as port:
        config = envoy_config(
            tmp_path, gateways=("127.0.0.1:1",), media=(f"127.0.0.1:{port}",), tls=envoy_tls
        )
        for proxy in run_envoy(config, tmp_path):
            code = _media_call(proxy.grpc_target)
            refused_names = proxy.stats("cluster.media.ssl.").get("cluster.media.ssl.fail_verify_san", 0)
    assert code == expected
    assert (refused_names > 0) == (expected != grpc.StatusCode.OK), refused_names
