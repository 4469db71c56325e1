"""What a bench prints: result lines on stdout, percentiles, and the two lines that describe the
machine (its CPUs and its load average), so a figure can be told from one taken on a busy machine.

A benchmark's output is its product, so results go to stdout with :func:`emit`; nothing here
asserts on timings.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path


def emit(line: str = "") -> None:
    """Write one line of results to stdout (flushed, so progress shows while a bench runs)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct``-th percentile (0..100) with linear interpolation between closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def cpu_description() -> str:
    """``"<n> CPUs, <model name>"`` from the OS and /proc/cpuinfo (best effort)."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{count} CPUs, {model}"


def load_average() -> str:
    """The 1/5/15-minute load averages, to tell a quiet machine from a busy one in the output."""
    try:
        one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    except (OSError, ValueError):
        return "load average unknown"
    return f"load average {one} {five} {fifteen}"
