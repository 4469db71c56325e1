"""A 3-node JetStream cluster loses a node under load and gets it back: nothing is lost.

The stack runs on three nats-server nodes (every stream and bucket with 3 replicas, every service
given all three URLs), a media API process and two worker processes. Under a steady load of tiny
``image`` tasks, the node with the most service connections is SIGKILLed (a host dying), the load
goes on while it is down, the node is started again on its store, and the load goes on once more.
Then the project's tasks are given time to settle and the counts that must be zero are asserted
zero (tests/support/load.py): no create left without a 201, nothing stuck non-terminal, nothing
stored that a client was told failed, nothing duplicated; every task succeeded with exactly one
output. The clients that were on the dead node are found connected to the survivors, and every
create sent while it was down was answered 201.

Run alone with ``pytest -m faults``. Everything stays on loopback; every process is stopped at the end.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from stack import Stack, nats_cluster
from stack.nats_cluster import NatsNode
from tests.support import Corpus, Origin
from tests.support.load import FAULT_ENV, MUST_BE_ZERO, CreateLoad, CreateResult, settle, tally
from tests.support.stacks import api_client, running_stack

pytestmark = [pytest.mark.faults, pytest.mark.timeout(240)]  # a pass takes about 30 s
log = logging.getLogger(__name__)

RATE = 8.0  # creates per second
PHASE_S = 3.0  # seconds of load in each phase
RECONNECT_S = 20.0  # how long the clients of the dead node get to appear on the survivors


@pytest.fixture(scope="module")
def cluster_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(
        tmp_path_factory.mktemp("nats-cluster"),
        "cluster",
        intelligence=False,
        nats_nodes=3,
        workers=2,
        env=dict(FAULT_ENV),
    ) as stack:
        yield stack


def _connections(node: NatsNode) -> int:
    """Client connections one node holds (routes to the other nodes are not counted)."""
    url = f"http://127.0.0.1:{node.monitor_port}/connz"
    return int(httpx.get(url, timeout=2.0).json()["num_connections"])


def _wait_connections(nodes: list[NatsNode], expected: int) -> int:
    """Client connections across ``nodes`` once they reach ``expected``, or as they are after
    ``RECONNECT_S``."""
    deadline = time.monotonic() + RECONNECT_S
    while True:
        total = sum(_connections(node) for node in nodes)
        if total >= expected or time.monotonic() > deadline:
            return total
        time.sleep(0.2)


def _load(stack: Stack, body: dict[str, Any]) -> CreateLoad:
    return CreateLoad(stack.base_url, stack.config.api_key, lambda: dict(body), rate=RATE, connections=6)


def test_a_nats_node_killed_and_restarted_under_load_loses_nothing(
    cluster_stack: Stack, origin: Origin, corpus: Corpus
) -> None:
    stack = cluster_stack
    body = {"kind": "image", "url": origin.url(corpus.png_small.name), "options": {"width": 16}}
    nodes = stack.nats_nodes
    before = {node.name: _connections(node) for node in nodes}
    leader = nats_cluster.meta_leader(nodes[0].monitor_port)
    victim = max(nodes, key=lambda node: (before[node.name], node.name == leader))
    survivors = [node for node in nodes if node is not victim]
    log.info("connections %s, meta leader %s: killing %s", before, leader, victim.name)
    assert before[victim.name] > 0, "the victim serves some of the services"

    results: list[CreateResult] = []
    with _load(stack, body) as load:  # the node dies mid-load
        time.sleep(PHASE_S)
        stack.kill(victim.name)
        time.sleep(PHASE_S)
        results += load.stop()
    with _load(stack, body) as load:  # every create of this phase is sent while it is down
        time.sleep(PHASE_S)
        while_down = load.stop()
    reconnected = _wait_connections(survivors, sum(before.values()))
    with _load(stack, body) as load:  # it comes back mid-load
        time.sleep(PHASE_S)
        stack.restart(victim.name)
        time.sleep(PHASE_S)
        results += load.stop()
    results += while_down

    with api_client(stack) as client:
        tasks = settle(client, timeout=60.0)
    counts = tally(results, tasks)
    log.info("fault counts %s", counts)

    assert reconnected == sum(before.values()), (before, reconnected)
    assert len(while_down) >= 10 and all(r.task_id for r in while_down), while_down
    assert counts["creates"] >= 40, counts
    assert {name: counts[name] for name in MUST_BE_ZERO} == dict.fromkeys(MUST_BE_ZERO, 0), counts
    assert counts["succeeded"] == counts["tasks stored"] == counts["creates"], counts
    not_one_output = [task["id"] for task in tasks if len(task["outputs"]) != 1]
    assert not_one_output == [], not_one_output
