"""One transcript per input: decode the audio, run Whisper with its hallucination guards, and
cache the result so ``speech``, ``summary`` and ``outline`` of the same media transcribe once.

Audio reaches the model through our ffmpeg runner (sandboxed, demuxer allowlist: the same door as
every other kind), never through faster-whisper's own PyAV decoding of the untrusted file.

Guards against what Whisper users complain about most, invented text over silence or loops:
voice activity detection (min silence 500 ms), ``condition_on_previous_text=False``, the
compression-ratio / log-prob / no-speech thresholds, ``hallucination_silence_threshold`` with
word timestamps, segments the model itself thinks are not speech dropped, and phrases looping
three or more times collapsed (``text.repetition``). A wrong language guess can make decoding spin
at temperature fallbacks; a wall-time budget proportional to the audio stops it with an error.

The cache key is the SHA-256 of the input bytes, the model's digest and the options that change
the words; entries are JSON objects in the project's storage (``<project>/_transcripts/``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np

from intelligence_service.options import SpeechOptions
from intelligence_service.text import Segment
from intelligence_service.text.repetition import remove_repetitions
from intelligence_service.whisper_model import Whisper, sha256_file
from taskkit.errors import Cancelled, InputError, NotFound
from taskkit.media import base_argv, input_args
from taskkit.runtime import TaskContext

SAMPLE_RATE: Final = 16_000
NO_SPEECH_DROP: Final = 0.6  # a segment the model itself rates this likely to be silence is dropped
# Whisper base int8 on 2 cores runs at ~0.1-0.3x real time; a spinning decode is 10x and more.
BUDGET_BASE_S: Final = 60.0
BUDGET_PER_AUDIO_S: Final = 2.0
# Progress steps of a transcript; handlers plan them with their own (``ctx.progress.plan``).
TRANSCRIPT_STEPS: Final = {"decode": 1.0, "transcribe": 9.0}
_CACHE_VERSION: Final = 1


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    text: str
    probability: float


@dataclass(frozen=True)
class TimedSegment:
    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()


@dataclass(frozen=True)
class Transcript:
    language: str
    language_probability: float
    duration: float
    segments: tuple[TimedSegment, ...] = field(default=())

    def plain(self) -> list[Segment]:
        """The segments as the text analytics take them."""
        return [Segment(s.start, s.end, s.text) for s in self.segments]

    def to_json(self) -> dict[str, Any]:
        return {"version": _CACHE_VERSION, **asdict(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Transcript:
        segments = tuple(
            TimedSegment(s["start"], s["end"], s["text"], tuple(Word(**w) for w in s["words"]))
            for s in data["segments"]
        )
        return cls(data["language"], data["language_probability"], data["duration"], segments)


def decode_argv(src: Path, dst: Path, ctx: TaskContext) -> list[str]:
    """The input's first audio stream as 16 kHz mono float32 samples, the rate Whisper runs at."""
    return [
        *base_argv(ctx.settings.ffmpeg_path),
        *input_args(src, ctx.probe, 0.0, None),
        *["-map", "0:a:0", "-vn", "-sn", "-dn", "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "f32le", str(dst)],
    ]


def cache_key(project: str, input_digest: str, model_digest: str, opts: SpeechOptions) -> str:
    words = {k: v for k, v in opts.to_dict().items() if k != "word_timestamps"} | {"words": True}
    tag = hashlib.sha256(json.dumps([model_digest, words], sort_keys=True).encode()).hexdigest()[:16]
    return f"{project}/_transcripts/{input_digest}-{tag}.json"


async def transcript_for(ctx: TaskContext, opts: SpeechOptions) -> tuple[Transcript, bool]:
    """The input's transcript and whether it came from the cache. Word timings are always kept in
    the cache, so a later request with ``word_timestamps: false`` is a hit too."""
    if ctx.probe.audio is None:
        raise InputError("the input has no audio stream")
    model: Whisper = ctx.resources["whisper"]
    digest = await asyncio.to_thread(sha256_file, ctx.input_path)
    key = cache_key(ctx.task.project, digest, model.fingerprint, opts)
    cached = ctx.workdir / "transcript.json"
    try:
        await ctx.storage.fetch_file(key, cached)
        return Transcript.from_json(json.loads(cached.read_text())), True
    except (NotFound, FileNotFoundError, KeyError, ValueError):
        pass  # a miss, or an entry of an older layout: transcribe again
    samples_path = ctx.workdir / "audio.f32"
    duration = ctx.probe.duration or 0.0
    await ctx.ffmpeg(decode_argv(ctx.input_path, samples_path, ctx), duration=duration, step="decode")
    samples = np.fromfile(samples_path, dtype=np.float32)
    transcript = await transcribe(ctx, model.model, samples, opts)
    cached.write_text(json.dumps(transcript.to_json()))
    await ctx.storage.put_file(key, cached)
    return transcript, False


async def transcribe(ctx: TaskContext, model: Any, samples: np.ndarray, opts: SpeechOptions) -> Transcript:
    """Run Whisper in a thread, segment by segment, so cancel and the budget are checked between
    segments (every few seconds at most) and progress follows the transcribed seconds."""
    duration = len(samples) / SAMPLE_RATE
    loop = asyncio.get_running_loop()
    report = ctx.progress.step("transcribe")
    stop = threading.Event()
    budget = min(BUDGET_BASE_S + BUDGET_PER_AUDIO_S * duration, ctx.remaining())

    async def publish(percent: int) -> None:
        await report(percent)

    def progress(seconds: float) -> None:
        if duration > 0:
            asyncio.run_coroutine_threadsafe(publish(min(int(100 * seconds / duration), 99)), loop)

    def should_stop() -> bool:
        return stop.is_set() or ctx.cancel.is_set()

    try:
        return await asyncio.to_thread(
            _run, model, samples, opts, duration, time.monotonic() + budget, should_stop, progress
        )
    finally:
        stop.set()  # a cancelled await leaves the thread running: tell it to end at its next segment


def whisper_kwargs(opts: SpeechOptions) -> dict[str, Any]:
    """faster-whisper's ``transcribe`` arguments for ``opts``, guards included (also what
    ``bench.speech`` calls the model with directly)."""
    return {
        "language": opts.language,
        "task": opts.task,
        "initial_prompt": opts.prompt,
        "word_timestamps": True,
        "vad_filter": opts.vad,
        "vad_parameters": {"min_silence_duration_ms": 500} if opts.vad else None,
        "condition_on_previous_text": False,
        "compression_ratio_threshold": 2.4,
        "log_prob_threshold": -1.0,
        "no_speech_threshold": 0.6,
        "hallucination_silence_threshold": 2.0,
    }


def _run(
    model: Any,
    samples: np.ndarray,
    opts: SpeechOptions,
    duration: float,
    deadline: float,
    should_stop: Callable[[], bool],
    progress: Callable[[float], None],
) -> Transcript:
    segments, info = model.transcribe(samples, **whisper_kwargs(opts))
    kept: list[TimedSegment] = []
    for segment in segments:  # a generator: each step decodes one more window
        if should_stop():
            raise Cancelled("the task was cancelled")
        if time.monotonic() > deadline:
            raise InputError(
                f"transcription ran past its budget for {duration:.0f} seconds of audio; "
                "if the language was misdetected, pass options.language"
            )
        progress(segment.end)
        if segment.no_speech_prob >= NO_SPEECH_DROP or not segment.text.strip():
            continue
        words = tuple(
            Word(round(w.start, 3), round(w.end, 3), w.word.strip(), round(w.probability, 4))
            for w in segment.words or ()
        )
        kept.append(TimedSegment(round(segment.start, 3), round(segment.end, 3), segment.text.strip(), words))
    return Transcript(
        language=info.language,
        language_probability=round(float(info.language_probability), 4),
        duration=round(duration, 3),
        segments=_without_loops(kept),
    )


def _without_loops(segments: list[TimedSegment]) -> tuple[TimedSegment, ...]:
    """Collapse phrases looping three or more times; a shortened segment keeps its first words."""
    cleaned = remove_repetitions([Segment(s.start, s.end, s.text) for s in segments])
    by_start = {s.start: s for s in segments}
    out = []
    for segment in cleaned:
        original = by_start.get(segment.start)
        words = original.words if original is not None else ()
        if original is not None and segment.text != original.text:
            words = words[: len(segment.text.split())]
        out.append(TimedSegment(segment.start, segment.end, segment.text, words))
    return tuple(out)
