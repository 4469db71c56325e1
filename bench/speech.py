"""``speech`` through the API on a warm worker vs. faster-whisper called directly, same model.

``python -m bench.speech [--rounds N]``

Speaks a ~50 s monologue with espeak-ng, starts the stack (intelligence_service with one task at
a time, so the model gets every core as it does here directly) and serves the clip from a local
origin. Each round (a) runs a ``speech`` task, timed from the POST until ``task.succeeded`` on the
SSE stream — fetch, hash, probe, ffmpeg decode, transcription, JSON output, record — then (b)
calls ``WhisperModel.transcribe`` on the same file, in this process, with the worker's own
arguments (``transcripts.whisper_kwargs``) and thread count. Each round's input differs only in
a metadata tag, so the transcript cache never answers. The first API task (model warm-up) is not
counted. Prints the real-time factor of both and last ``ratio <median api / median direct>``;
the goal is <= 1.05.
"""

from __future__ import annotations

import statistics
import subprocess
import time
from pathlib import Path

from bench import (
    api_client,
    bench_parser,
    bench_run,
    create_task,
    emit,
    load_average,
    running_stack,
    wait_done,
)
from intelligence_service.options import SpeechOptions
from intelligence_service.transcripts import whisper_kwargs
from intelligence_service.whisper_model import load_whisper
from taskkit.config import Settings
from tests.support import Origin
from tests.support.speech import TOPICS, duration, speak

CONCURRENCY = 1


def variant(clip: Path, index: int) -> Path:
    """The same audio with a different ``comment`` tag: other bytes, so another cache key."""
    out = clip.with_name(f"round{index}{clip.suffix}")
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", clip, "-c", "copy", "-metadata", f"comment=round {index}", out],
        check=True,
    )
    return out


def direct(model: object, clip: Path) -> float:
    started = time.perf_counter()
    segments, _ = model.transcribe(str(clip), **whisper_kwargs(SpeechOptions()))  # type: ignore[attr-defined]
    list(segments)
    return time.perf_counter() - started


def monologue(media: Path) -> tuple[Path, float]:
    """The three topics spoken by espeak-ng into ``media`` (~57 s); the clip and its seconds."""
    media.mkdir()
    clip = speak(" ".join(text for _, _, text in TOPICS), media / "monologue.m4a")
    seconds = duration(clip)
    emit(f"clip: {seconds:.1f} s of espeak-ng speech")
    return clip, seconds


def one_task_at_a_time(models: Path) -> dict[str, str]:
    """Stack settings for the speech benches: one task at a time, so Whisper gets every core."""
    return {"TRANSMUTE_WORKER_CONCURRENCY": str(CONCURRENCY), "TRANSMUTE_MODEL_CACHE_DIR": str(models)}


def main(argv: list[str] | None = None) -> None:
    parser = bench_parser("speech", __doc__)
    parser.add_argument("--rounds", type=int, default=3, help="api/direct pairs to run (default 3)")
    args = parser.parse_args(argv)

    with bench_run("speech") as tmp:
        media = tmp / "media"
        clip, seconds = monologue(media)
        settings = Settings(worker_concurrency=CONCURRENCY, model_cache_dir=tmp / "models")
        model = load_whisper(settings).model
        env = one_task_at_a_time(tmp / "models")

        api_times: list[float] = []
        direct_times: list[float] = []
        with Origin(media) as origin, running_stack(tmp / "stack", env, intelligence=True) as stack:
            with api_client(stack, timeout=900.0) as client:
                warm = wait_done(
                    client, create_task(client, "speech", origin.url(clip.name), {})["id"], "sse"
                )
                if warm["status"] != "succeeded":
                    raise RuntimeError(f"warm-up task ended {warm['status']}: {warm.get('error')}")
                for round_no in range(1, args.rounds + 1):
                    source = variant(clip, round_no)
                    started = time.perf_counter()
                    task = create_task(client, "speech", origin.url(source.name), {})
                    done = wait_done(client, task["id"], "sse")
                    api_s = time.perf_counter() - started
                    if done["status"] != "succeeded" or done.get("cache_hit"):
                        raise RuntimeError(f"task {task['id']} ended {done['status']}: {done.get('error')}")
                    direct_s = direct(model, source)
                    api_times.append(api_s)
                    direct_times.append(direct_s)
                    emit(
                        f"round {round_no}: api {api_s:.3f} s (rtf {api_s / seconds:.3f})  "
                        f"direct {direct_s:.3f} s (rtf {direct_s / seconds:.3f})  "
                        f"ratio {api_s / direct_s:.3f}  ({load_average()})"
                    )

    api_median = statistics.median(api_times)
    direct_median = statistics.median(direct_times)
    emit(f"median api {api_median:.3f} s, real-time factor {api_median / seconds:.3f}")
    emit(f"median direct {direct_median:.3f} s, real-time factor {direct_median / seconds:.3f}")
    emit(f"ratio {api_median / direct_median:.3f}")


if __name__ == "__main__":
    main()
