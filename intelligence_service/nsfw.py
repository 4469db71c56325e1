"""``nsfw``: open_nsfw's verdict on an image, or on frames sampled from a video.

The model gives one probability that a picture is NSFW (sexual nudity). It is reported as both
``nudity`` and ``sexual``; ``violence`` and ``gore`` are ``null`` because the model does not judge
them, and ``false`` would claim it had. Raw probabilities and the frames examined are in
``scores`` so a caller can apply its own threshold.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Final

import numpy as np
from PIL import Image
from transmute.tasks.v1 import tasks_pb2

from intelligence_service import nsfw_model
from intelligence_service.json_output import json_output
from taskkit.errors import InputError
from taskkit.media import scenes
from taskkit.runtime import Outcome, TaskContext

CATEGORIES: Final = ("nudity", "sexual")  # what the one NSFW probability speaks for
BATCH: Final = 16
_FRAME_BYTES: Final = scenes.NSFW_SIDE * scenes.NSFW_SIDE * 3


def verdict(frames: Sequence[tuple[float, float]], *, video: bool) -> tasks_pb2.NsfwResult:
    """The result from (time, probability) per examined frame (pure)."""
    top = max((p for _, p in frames), default=0.0)
    band = nsfw_model.severity(top)
    flagged = nsfw_model.flagged(top)
    result = tasks_pb2.NsfwResult(
        nudity=flagged,
        sexual=flagged,
        categories=list(CATEGORIES) if flagged else [],
        severity=tasks_pb2.NsfwSeverity(nudity=band, sexual=band),
        description=_description(top, len(frames), flagged=flagged, video=video),
        scores=tasks_pb2.NsfwScores(nsfw=round(top, 4), frames_examined=len(frames)),
    )
    for time, p in frames:
        result.scores.frames.add(time=round(time, 3), nsfw=round(p, 4))
    if video:
        for start, end, peak in _flagged_runs(frames):
            for category in CATEGORIES:
                result.timeline.add(
                    start=start, end=end, category=category, severity=nsfw_model.severity(peak)
                )
    return result


def _flagged_runs(frames: Sequence[tuple[float, float]]) -> list[tuple[float, float, float]]:
    """Adjacent flagged frames merged: (start, end, peak probability); a run ends where the next
    examined frame is not flagged (or at the last frame's time plus one second)."""
    runs: list[tuple[float, float, float]] = []
    current: list[float] | None = None
    for index, (time, p) in enumerate(frames):
        following = frames[index + 1][0] if index + 1 < len(frames) else time + 1.0
        if nsfw_model.flagged(p):
            if current is None:
                current = [time, following, p]
            else:
                current[1], current[2] = following, max(current[2], p)
        elif current is not None:
            runs.append((current[0], current[1], current[2]))
            current = None
    if current is not None:
        runs.append((current[0], current[1], current[2]))
    return [(round(s, 3), round(e, 3), p) for s, e, p in runs]


def _description(top: float, count: int, *, flagged: bool, video: bool) -> str:
    where = f"{count} frames of the video" if video else "the image"
    finding = "Sexual nudity is likely in" if flagged else "No sexual nudity was detected in"
    return f"{finding} {where} (highest probability {top:.2f}); violence and gore were not assessed."


async def handle(ctx: TaskContext) -> Outcome:
    model: nsfw_model.NsfwModel = ctx.resources["nsfw"]
    if ctx.probe.is_image:
        with Image.open(ctx.input_path) as image:
            batch = np.stack([nsfw_model.preprocess(image)])
        frames = [(0.0, (await asyncio.to_thread(model.score, batch))[0])]
        result = verdict(frames, video=False)
    else:
        if ctx.probe.video is None:
            raise InputError("the input has no picture to judge (no image and no video stream)")
        frames = await _video_frames(ctx, model)
        result = verdict(frames, video=True)
    return Outcome([json_output(ctx, result)], result=result)


async def _video_frames(ctx: TaskContext, model: nsfw_model.NsfwModel) -> list[tuple[float, float]]:
    ctx.progress.plan({"sample": 3.0, "score": 1.0})
    raw, printed = "frames.rgb", "frames.txt"
    argv = scenes.nsfw_frames_argv(
        ctx.input_path,
        ctx.probe,
        raw,
        printed,
        max_frames=ctx.settings.nsfw_max_frames,
        ffmpeg=ctx.settings.ffmpeg_path,
    )
    await ctx.ffmpeg(argv, duration=ctx.probe.duration, step="sample")
    times = scenes.parse_times((ctx.workdir / printed).read_text())
    data = (ctx.workdir / raw).read_bytes()
    count = min(len(times), len(data) // _FRAME_BYTES)
    if count == 0:
        raise InputError("no frame could be decoded from the video")
    scores: list[float] = []
    report = ctx.progress.step("score")
    for first in range(0, count, BATCH):
        chunk = range(first, min(first + BATCH, count))
        batch = np.stack(
            [nsfw_model.preprocess_rgb256(data[i * _FRAME_BYTES : (i + 1) * _FRAME_BYTES]) for i in chunk]
        )
        scores += await asyncio.to_thread(model.score, batch)
        await report(100 * len(scores) // count)
    return list(zip(times[:count], scores, strict=True))
