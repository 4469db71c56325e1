"""Benchmarks that drive the real local stack (see ``bench/README.md``).

Each ``bench.<name>`` script is a ``python -m`` command that prints its results and asserts
nothing. What they share lives in the modules below and is named here, so a script imports it from
``bench``:

- :mod:`bench.kit.cli`: the script's frame: its parser and its run (temp dir, machine lines).
- :mod:`bench.kit.report`: result lines on stdout, percentiles, the machine's CPUs and load average.
- :mod:`bench.kit.stack_client`: a started stack, an HTTP client for it, creating a task and waiting
  for it (Server-Sent Events or polling).
- :mod:`bench.kit.server_side`: what the stack's processes used and logged: CPU seconds from /proc,
  per-phase timestamps of each task from a service's JSON log.
- :mod:`bench.kit.direct`: ffmpeg argvs run directly, the baselines the API is measured against.
"""

from bench.kit.cli import bench_parser, bench_run
from bench.kit.direct import timed_argvs
from bench.kit.report import cpu_description, emit, load_average, percentile
from bench.kit.server_side import TaskMarks, cpu_delta, process_cpu_seconds, stack_cpu_seconds, task_marks
from bench.kit.stack_client import (
    TERMINAL_STATUSES,
    api_client,
    create_task,
    running_stack,
    wait_done,
    wait_poll,
    wait_sse,
)

__all__ = [
    "TERMINAL_STATUSES",
    "TaskMarks",
    "api_client",
    "bench_parser",
    "bench_run",
    "cpu_delta",
    "cpu_description",
    "create_task",
    "emit",
    "load_average",
    "percentile",
    "process_cpu_seconds",
    "running_stack",
    "stack_cpu_seconds",
    "task_marks",
    "timed_argvs",
    "wait_done",
    "wait_poll",
    "wait_sse",
]
