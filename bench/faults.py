"""The create path under faults: what clients are told and what is left, with create latency.

``python -m bench.faults [--rate R] [--load S]``

Starts the stack in a temp dir (media API process plus two worker processes, short leases and
sweeps as in the fault suite), serves the test corpus from a local origin, and for each fault runs
a steady create load of tiny ``image`` tasks (``R`` per second from 6 connections; clients retry a
503 with the same ``Idempotency-Key``, as the README advises) for ``S`` seconds, makes the fault,
loads ``S`` seconds more, lets the tasks settle and counts: creates answered 201/503/500, tasks
stored, succeeded, stuck non-terminal, stored-but-reported-failed, duplicated, and the create
latency (first send to the 201, retries included) p50/p99. Faults: none; nats-server restarted
(SIGTERM, 1 s down, same store); the media API process SIGKILLed and restarted; the worker running
an encode SIGKILLed mid-encode. Prints one table; asserts nothing.
"""

from __future__ import annotations

import json
import secrets
import signal
from collections.abc import Callable

import httpx

from bench import bench_parser, bench_run, emit, running_stack
from stack import Stack
from tests.support import Origin, build_corpus
from tests.support.load import FAULT_ENV, kill_mid_encode, under_load

COLUMNS = (
    "creates",
    "answered 201",
    "answered 503",
    "answered 500",
    "tasks stored",
    "succeeded",
    "stuck non-terminal",
    "stored but reported failed",
    "duplicated",
    "create p50 ms",
    "create p99 ms",
)


def _faults(stack: Stack, video: dict[str, object]) -> dict[str, Callable[[], None]]:
    def worker_killed() -> None:
        headers = {"Authorization": f"Bearer {stack.config.api_key}"}
        with httpx.Client(base_url=stack.base_url, headers=headers, timeout=30.0) as client:
            _, victim = kill_mid_encode(stack, client, video)
        emit(f"  killed {victim} mid-encode")

    return {
        "none": lambda: None,
        "nats-server restarted (SIGTERM, 1 s down)": lambda: stack.restart(
            "nats", signal.SIGTERM, down_s=1.0
        ),
        "media API SIGKILLed and restarted": lambda: stack.restart("media", signal.SIGKILL),
        "worker SIGKILLed mid-encode": worker_killed,
    }


def main() -> None:
    parser = bench_parser("faults", __doc__)
    parser.add_argument("--rate", type=float, default=20.0, help="creates per second (default 20)")
    parser.add_argument("--load", type=float, default=5.0, help="seconds of load before and after each fault")
    args = parser.parse_args()
    with bench_run("faults") as root:
        corpus = build_corpus(root / "corpus")
        names = ["none", "nats", "media", "worker"]
        keys = {name: f"ittybit_bench_{name}_" + secrets.token_hex(6) for name in names}
        keys_file = root / "keys.json"
        keys_file.write_text(json.dumps({key: f"bench-{name}" for name, key in keys.items()}))
        env = {**FAULT_ENV, "TRANSMUTE_API_KEYS_FILE": str(keys_file)}
        with Origin(corpus.root) as origin, running_stack(root / "stack", env, media_role="api") as stack:
            stack.add_worker()
            stack.add_worker()
            image = {"kind": "image", "url": origin.url(corpus.png_small.name), "options": {"width": 16}}
            video = {"kind": "video", "url": origin.url(corpus.clip_av.name), "options": {"format": "webm"}}
            rows = []
            for name, (fault, make) in zip(names, _faults(stack, video).items(), strict=True):
                emit(f"{fault} ...")
                counts = under_load(stack, keys[name], image, make, rate=args.rate, load_s=args.load)
                rows.append((fault, counts))
    emit()
    emit("| fault | " + " | ".join(COLUMNS) + " |")
    emit("|---" * (len(COLUMNS) + 1) + "|")
    for fault, counts in rows:
        emit(f"| {fault} | " + " | ".join(f"{counts[c]:g}" for c in COLUMNS) + " |")


if __name__ == "__main__":
    main()
