"""The scaled stack serves tasks through its front door: a 3-node JetStream cluster, two media API
and two media worker processes, two gateways, envoy in front of the gateways and of the API
replicas (the shape of ``make run-scaled``, media only to stay light).

Every request goes through envoy; the gateways reach media_service through envoy's gRPC listener.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from stack import Stack
from tests.conftest import wait_done
from tests.support import Corpus, Origin
from tests.support.stacks import api_client, running_stack


@pytest.fixture(scope="module")
def scaled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(
        tmp_path_factory.mktemp("scaled"),
        "scaled",
        intelligence=False,
        nats_nodes=3,
        api_replicas=2,
        workers=2,
        gateways=2,
        envoy=True,
    ) as stack:
        yield stack


@pytest.fixture(scope="module")
def front(scaled: Stack) -> Iterator[httpx.Client]:
    with api_client(scaled) as client:
        yield client


def test_the_scaled_stack_has_every_part(scaled: Stack) -> None:
    running = {name for name, proc in scaled.procs.items() if proc.poll() is None}
    assert running == {
        "nats-1", "nats-2", "nats-3",
        "media", "media-2", "media-worker-1", "media-worker-2",
        "gateway", "gateway-2",
        "envoy",
    }  # fmt: skip
    env = scaled.env()
    assert env["TRANSMUTE_NATS_REPLICAS"] == "3"
    assert env["TRANSMUTE_NATS_URL"].count(",") == 2
    assert env["TRANSMUTE_MEDIA_ADDR"] == f"127.0.0.1:{scaled.config.envoy_grpc_port}"


def test_tasks_created_through_envoy_succeed_on_the_replicas(
    scaled: Stack, front: httpx.Client, origin: Origin, corpus: Corpus
) -> None:
    body = {"kind": "image", "url": origin.url(corpus.png_small.name), "options": {"width": 16}}
    created = [front.post("/tasks", json=body) for _ in range(8)]
    assert [r.status_code for r in created] == [201] * 8, [r.text for r in created]
    done = [wait_done(front, r.json()["id"]) for r in created]
    assert {t["status"] for t in done} == {"succeeded"}, done
    (output,) = done[0]["outputs"]
    assert output["url"].startswith(scaled.base_url)  # signed links name the front door
    assert httpx.get(output["url"], timeout=10.0).status_code == 200


def _requests_per_host(stack: Stack, cluster: str) -> dict[str, int]:
    """envoy's own count of requests sent to each host of one upstream cluster (admin /clusters)."""
    text = httpx.get(f"http://127.0.0.1:{stack.config.envoy_admin_port}/clusters", timeout=5.0).text
    counts: dict[str, int] = {}
    for line in text.splitlines():
        name, _, rest = line.partition("::")
        host, _, stat = rest.rpartition("::rq_total::")
        if name == cluster and host:
            counts[host] = int(stat)
    return counts


def test_envoy_spreads_requests_over_every_gateway_and_api_replica(
    scaled: Stack, front: httpx.Client
) -> None:
    for _ in range(30):
        assert front.get("/tasks", params={"limit": 1}).status_code == 200
    gateways = _requests_per_host(scaled, "gateway")
    media = _requests_per_host(scaled, "media")
    tasks = _requests_per_host(scaled, "tasks")
    assert set(gateways) == {f"127.0.0.1:{port}" for port in scaled.gateway_ports}, gateways
    assert all(count > 0 for count in gateways.values()), gateways
    assert set(media) == {f"127.0.0.1:{port}" for port in scaled.api_ports["media"]}, media
    assert all(count > 0 for count in tasks.values()), tasks
