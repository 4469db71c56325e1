"""The two intelligence models, real and loaded once per module: Whisper base from the packaged
halves, joined into a temp cache, on CPU int8; open_nsfw on onnxruntime CPU.

Speech comes from ``espeak-ng`` at test time (a system package, like ffmpeg): when it is missing
the test fails rather than skips, because the transcript check is the one proof the join loads.

Preprocessing tolerances: against the decoded JPEG our crop, BGR swap and mean are exact. Against
an independent numpy implementation (numpy's own 2x bilinear filter; only the JPEG codec is
shared) the values differ by PIL's fixed-point resize rounding (<= 1 grey level) as amplified by
the JPEG quantiser: mean |diff| <= 0.6 (0.43 measured) and max <= 16 (14 measured). The likely
mistakes land far outside: bicubic 0.98, quality 95 1.44, no JPEG 1.94, RGB order 81.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
import subprocess
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
from PIL import Image, ImageDraw

from intelligence_service import nsfw_model, whisper_model
from intelligence_service.nsfw_model import NsfwModel, flagged, preprocess, preprocess_rgb256, severity
from intelligence_service.whisper_model import (
    MODEL_SHA256,
    ModelError,
    Whisper,
    assemble,
    cpu_threads,
    open_whisper,
    packaged_files,
    resolve_compute_type,
    resolve_device,
)
from taskkit.config import Settings

T = TypeVar("T")
SENTENCE = "the quick brown fox jumps over the lazy dog"
MODEL_BYTES = 145_217_532


def settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "whisper_model_dir": None,
        "whisper_device": "cpu",
        "whisper_compute_type": "auto",
    }
    return Settings(**(base | overrides))


def held(opener: Callable[[], AbstractAsyncContextManager[T]]) -> Iterator[T]:
    """Drive an async context manager from a sync module fixture, on a loop of its own."""
    with asyncio.Runner() as runner:
        manager = opener()
        value = runner.run(manager.__aenter__())
        try:
            yield value
        finally:
            runner.run(manager.__aexit__(None, None, None))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- Whisper ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cache_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return settings(model_cache_dir=tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def whisper(cache_settings: Settings) -> Iterator[Whisper]:
    yield from held(lambda: open_whisper(cache_settings))


def test_assembled_model_transcribes_speech(whisper: Whisper, tmp_path: Path) -> None:
    clip = tmp_path / "fox.wav"
    subprocess.run(["espeak-ng", "-s", "130", "-w", str(clip), SENTENCE], check=True)
    segments, info = whisper.model.transcribe(str(clip), language="en", beam_size=1)
    said = re.findall(r"[a-z]+", " ".join(segment.text for segment in segments).lower())
    assert info.duration > 1.0
    # espeak is no human voice: allow two of the nine words to come back a little off
    assert sum(word in said for word in SENTENCE.split()) >= 7, said
    assert (whisper.name, whisper.sha256) == ("whisper-base", MODEL_SHA256)
    assert (whisper.device, whisper.compute_type) == ("cpu", "int8")
    assert sha256(whisper.path / "model.bin") == MODEL_SHA256
    assert sorted(p.name for p in whisper.path.iterdir() if not p.name.startswith(".")) == [
        "config.json",
        "model.bin",
        "tokenizer.json",
        "vocabulary.txt",
    ]


def test_second_open_reuses_the_cached_join(whisper: Whisper, cache_settings: Settings) -> None:
    before = (whisper.path / "model.bin").stat()

    async def reopen() -> Whisper:
        async with open_whisper(cache_settings) as again:
            return again

    again = asyncio.run(reopen())
    after = (again.path / "model.bin").stat()
    assert again.path == whisper.path
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # not joined again


def test_corrupt_cache_of_the_same_size_is_rebuilt(tmp_path: Path) -> None:
    parts, sidecars = packaged_files()
    dest = tmp_path / "whisper-base"
    dest.mkdir()
    with (dest / "model.bin").open("wb") as stale:
        stale.truncate(MODEL_BYTES)  # right size, wrong bytes: only a content check sees it
    before = (dest / "model.bin").stat().st_ino
    assert assemble(parts, dest, MODEL_SHA256, sidecars) == dest
    assert (dest / "model.bin").stat().st_ino != before
    assert sha256(dest / "model.bin") == MODEL_SHA256
    assert sha256(dest / "tokenizer.json") == sha256(sidecars[1])


def test_a_corrupted_part_is_refused_before_anything_is_cached(tmp_path: Path) -> None:
    (first, second), _ = packaged_files()
    damaged = tmp_path / "model.bin.part2"
    data = bytearray(second.read_bytes())
    data[len(data) // 2] ^= 0x01
    damaged.write_bytes(bytes(data))
    dest = tmp_path / "cache"
    with pytest.raises(ModelError, match=f"expected {MODEL_SHA256}.*not the pinned version"):
        assemble([first, damaged], dest, MODEL_SHA256)
    assert [p.name for p in dest.iterdir()] == [".lock"]  # no model.bin, no temp left behind


def test_model_dir_without_tokenizer_is_refused(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"")
    with pytest.raises(ModelError, match=r"no tokenizer\.json"):
        whisper_model.load_whisper(settings(whisper_model_dir=tmp_path))


def test_device_and_compute_type(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("cuda") == "cuda"
    monkeypatch.setattr(whisper_model.ctranslate2, "get_cuda_device_count", lambda: 0)
    assert resolve_device("auto") == "cpu"
    monkeypatch.setattr(whisper_model.ctranslate2, "get_cuda_device_count", lambda: 1)
    assert resolve_device("auto") == "cuda"
    with pytest.raises(ValueError, match="whisper_device"):
        resolve_device("gpu")
    assert resolve_compute_type("auto", "cpu") == "int8"
    assert resolve_compute_type("auto", "cuda") == "float16"
    assert resolve_compute_type("int8_float16", "cuda") == "int8_float16"


def test_cpu_threads_share_the_affinity_mask(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(whisper_model.os, "sched_getaffinity", lambda pid: set(range(8)))
    assert cpu_threads(settings(whisper_threads=0, worker_concurrency=2)) == 4
    assert cpu_threads(settings(whisper_threads=0, worker_concurrency=3)) == 2
    assert cpu_threads(settings(whisper_threads=0, worker_concurrency=16)) == 1
    assert cpu_threads(settings(whisper_threads=5, worker_concurrency=2)) == 5


# --- open_nsfw -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nsfw() -> Iterator[NsfwModel]:
    yield from held(lambda: nsfw_model.open_nsfw(settings()))


def colourful(size: int) -> Image.Image:
    """Smooth gradients plus hard-edged shapes: exercises the filter, the codec and the colours."""
    y, x = np.mgrid[0:size, 0:size] / size
    planes = np.stack([255 * x, 255 * (1 - y), 128 + 100 * np.sin(6 * x + 4 * y)], axis=-1)
    image = Image.fromarray(np.clip(planes, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    scale = size / 512
    draw.ellipse([v * scale for v in (100, 120, 300, 320)], fill=(250, 240, 40))
    draw.rectangle([v * scale for v in (320, 60, 460, 400)], fill=(20, 90, 200))
    return image


def landscape() -> Image.Image:
    image = Image.new("RGB", (480, 320), (110, 170, 235))
    draw = ImageDraw.Draw(image)
    draw.ellipse((360, 30, 430, 100), fill=(255, 220, 60))
    draw.polygon(
        [(0, 220), (120, 150), (260, 210), (380, 140), (480, 200), (480, 320), (0, 320)], fill=(60, 140, 60)
    )
    for x in (60, 150, 300):
        draw.rectangle((x, 230, x + 10, 270), fill=(100, 60, 20))
        draw.ellipse((x - 20, 190, x + 30, 240), fill=(30, 100, 30))
    return image


def gradient() -> Image.Image:
    x = np.linspace(0, 255, 400)
    planes = np.zeros((300, 400, 3), np.uint8)
    planes[..., 0] = x
    planes[..., 1] = x[::-1]
    planes[..., 2] = np.linspace(0, 255, 300)[:, None]
    return Image.fromarray(planes)


def benign() -> list[Image.Image]:
    return [
        Image.new("RGB", (320, 240), (30, 60, 200)),
        Image.new("L", (200, 200), 255),
        gradient(),
        landscape(),
    ]


def test_preprocess_is_exact_given_the_decoded_jpeg() -> None:
    image = colourful(300).resize((300, 200))
    resized = image.resize((256, 256), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    resized.save(buffer, format="JPEG")  # exactly what yahoo's classify_nsfw.py did: PIL defaults
    decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())))
    expected = decoded[16:240, 16:240, ::-1].astype(np.float32) - np.array([104, 117, 123], np.float32)
    got = preprocess(image)
    assert got.shape == (224, 224, 3)
    assert got.dtype == np.float32
    assert got.flags.c_contiguous
    np.testing.assert_array_equal(got, expected)


def test_preprocess_by_hand() -> None:
    # flat (R, G, B) = (200, 100, 50) is (B, G, R) - mean = (-54, -17, 77); JPEG colour
    # conversion rounding is the only slack
    flat = preprocess(Image.new("RGB", (400, 300), (200, 100, 50)))
    assert np.abs(flat - np.array([-54, -17, 77], np.float32)).max() <= 2
    # a white 16-px frame round black: the crop removes it exactly (MCU-aligned, so no ringing)
    framed = Image.new("RGB", (256, 256), (255, 255, 255))
    ImageDraw.Draw(framed).rectangle((16, 16, 239, 239), fill=(0, 0, 0))
    np.testing.assert_array_equal(preprocess(framed), np.broadcast_to(-nsfw_model.MEAN_BGR, (224, 224, 3)))


def numpy_reference(image: Image.Image) -> np.ndarray:
    """An independent implementation for a 512x512 input: PIL's bilinear at exactly 2x is the
    triangle filter [1, 3, 3, 1] / 8 (edges replicated; only the cropped-off border sees them)."""
    kernel = np.array([1, 3, 3, 1]) / 8

    def halve(values: np.ndarray, axis: int) -> np.ndarray:
        values = np.moveaxis(values, axis, 0)
        padded = np.concatenate([values[:1], values, values[-1:]])
        taps = 2 * np.arange(len(values) // 2)
        return np.moveaxis(sum(kernel[t] * padded[taps + t] for t in range(4)), 0, axis)

    resized = np.round(halve(halve(np.asarray(image, dtype=np.float64), 1), 0))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(resized, 0, 255).astype(np.uint8)).save(buffer, format="JPEG", quality=75)
    decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())), dtype=np.float32)
    return decoded[16:240, 16:240, [2, 1, 0]] - np.array([104.0, 117.0, 123.0], np.float32)


def test_preprocess_agrees_with_an_independent_numpy_implementation() -> None:
    image = colourful(512)
    diff = np.abs(preprocess(image) - numpy_reference(image))
    assert diff.mean() <= 0.6, diff.mean()
    assert diff.max() <= 16, diff.max()


def test_raw_rgb256_frames_match_pictures() -> None:
    picture = landscape().resize((256, 256))
    np.testing.assert_array_equal(preprocess_rgb256(picture.tobytes()), preprocess(picture))
    with pytest.raises(ValueError, match="196608 bytes"):
        preprocess_rgb256(b"\0" * (256 * 255 * 3))


def test_benign_pictures_score_safe(nsfw: NsfwModel) -> None:
    scores = nsfw.score(np.stack([preprocess(image) for image in benign()]))
    assert len(scores) == 4
    assert all(0.0 <= p < 0.2 for p in scores), scores
    assert all(severity(p) == "none" and not flagged(p) for p in scores)


def test_a_batch_of_n_gives_n_scores_in_order(nsfw: NsfwModel) -> None:
    singles = [nsfw.score(preprocess(image)[np.newaxis])[0] for image in benign()]
    many = nsfw.score(np.stack([preprocess(image) for image in benign()] * 5))  # > MAX_BATCH
    assert len(many) == 20
    np.testing.assert_allclose(many, singles * 5, atol=1e-5)
    assert nsfw.score(np.zeros((0, 224, 224, 3), np.float32)) == []
    with pytest.raises(ValueError, match="224, 224, 3"):
        nsfw.score(np.zeros((1, 3, 224, 224), np.float32))


def test_onnx_file_is_the_pinned_one(nsfw: NsfwModel, tmp_path: Path) -> None:
    assert nsfw.sha256 == nsfw_model.MODEL_SHA256 == sha256(nsfw_model.MODEL_PATH)
    assert nsfw.providers == ["CPUExecutionProvider"]
    tampered = tmp_path / "open-nsfw.onnx"
    data = bytearray(nsfw_model.MODEL_PATH.read_bytes())
    data[-1] ^= 0x01
    tampered.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=f"expected {nsfw_model.MODEL_SHA256}"):
        nsfw_model.load_nsfw(settings(), tampered)


@pytest.mark.parametrize(
    ("p", "band", "flag"),
    [
        (0.0, "none", False),
        (0.1999, "none", False),
        (0.2, "mild", False),
        (0.4999, "mild", False),
        (0.5, "moderate", True),
        (0.7999, "moderate", True),
        (0.8, "severe", True),
        (1.0, "severe", True),
    ],
)
def test_severity_bands_at_their_edges(p: float, band: str, flag: bool) -> None:
    assert severity(p) == band
    assert flagged(p) is flag


@pytest.mark.parametrize("p", [-0.01, 1.01, float("nan")])
def test_severity_refuses_what_is_no_probability(p: float) -> None:
    with pytest.raises(ValueError, match="probability"):
        severity(p)
    with pytest.raises(ValueError, match="probability"):
        flagged(p)
