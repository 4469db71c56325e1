"""The frame every bench script shares: its command line and its run.

:func:`bench_parser` is the ``python -m bench.<name>`` parser with the script's docstring as its
help; :func:`bench_run` is the run around the measuring: a temp dir named for the bench, the
machine line first and the load average again once the temp dir is gone.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.kit.report import cpu_description, emit, load_average


def bench_parser(name: str, doc: str | None) -> argparse.ArgumentParser:
    """The argument parser of ``python -m bench.<name>``, described by the script's ``doc``."""
    return argparse.ArgumentParser(prog=f"python -m bench.{name}", description=doc)


@contextmanager
def bench_run(name: str) -> Iterator[Path]:
    """A fresh temp dir ``bench-<name>-…`` for one run, removed on exit.

    Prints ``machine: <CPUs>; <load average>`` on entry and, when the run ends without an error,
    ``after the run: <load average>`` once the temp dir is removed.
    """
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
        emit(f"machine: {cpu_description()}; {load_average()}")
        yield Path(tmp)
    emit(f"after the run: {load_average()}")
