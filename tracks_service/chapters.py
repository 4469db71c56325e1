"""``chapters``: the outline of the media (an ``outline`` child task on the intelligence service)
as a chapter track; media without speech gets chapters at its scene cuts.

Chapters follow YouTube's rules: the first starts at 0, they are contiguous and cover the whole
media, each lasts at least ``min_length`` and titles are at most 70 characters.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from transmute.intelligence.v1 import intelligence_pb2
from transmute.tasks.v1 import tasks_pb2

from taskkit.errors import InputError
from taskkit.runtime import Outcome, Output, TaskContext, output_name, run_child, scene_cuts
from tracks_service.cues import Cue
from tracks_service.options import ChaptersOptions
from tracks_service.timed_text import to_srt, to_webvtt

MAX_TITLE: Final = 70
MIME: Final = {"vtt": "text/vtt", "srt": "application/x-subrip", "json": "application/json"}


@dataclass(frozen=True)
class Chapter:
    start: float
    end: float
    title: str


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def from_sections(sections: Sequence[tasks_pb2.OutlineSection], duration: float) -> list[Chapter]:
    """The outline's sections (already contiguous, snapped and at least ``min_length``), closed
    at the media's exact duration and with titles cut to YouTube's length."""
    chapters = [Chapter(s.start, s.end, s.title[:MAX_TITLE].strip()) for s in sections]
    if not chapters:
        return [Chapter(0.0, duration, "Full video")]
    chapters[0] = Chapter(0.0, chapters[0].end, chapters[0].title)
    chapters[-1] = Chapter(chapters[-1].start, duration, chapters[-1].title)
    return chapters


def from_scenes(cuts: Sequence[float], duration: float, min_length: float) -> list[Chapter]:
    """Chapters at scene cuts for media without speech, each at least ``min_length`` long, titled
    honestly: "Scene 3 (1:05)"."""
    starts = [0.0]
    for cut in sorted(cuts):
        if cut - starts[-1] >= min_length and duration - cut >= min_length:
            starts.append(cut)
    ends = [*starts[1:], duration]
    return [
        Chapter(round(start, 3), round(end, 3), f"Scene {index} ({_clock(start)})")
        for index, (start, end) in enumerate(zip(starts, ends, strict=True), 1)
    ]


def render(chapters: Sequence[Chapter], fmt: str) -> str:
    if fmt == "json":
        body = [
            {"index": i, "start": c.start, "end": c.end, "title": c.title} for i, c in enumerate(chapters)
        ]
        return json.dumps(body, ensure_ascii=False)
    cues = [Cue(c.start, c.end, (c.title,)) for c in chapters]
    return to_webvtt(cues) if fmt == "vtt" else to_srt(cues)


def media_duration(probed: float | None, outline: tasks_pb2.OutlineResult) -> float:
    """The container's duration, else where the outline ends (a WebM written to a pipe, as
    MediaRecorder writes them, stores none); InputError when neither knows."""
    duration = probed or (outline.timeline[-1].end if outline.timeline else 0.0)
    if not duration > 0:
        raise InputError("the input has no duration to make chapters over")
    return duration


async def handle(ctx: TaskContext) -> Outcome:
    opts: ChaptersOptions = ctx.options
    ctx.progress.plan({"outline": 9.0, "scenes": 1.0})
    request = intelligence_pb2.CreateOutlineTaskRequest(
        options=intelligence_pb2.OutlineOptions(min_section=opts.min_length)
    )
    child = await run_child(
        ctx, ctx.resources["clients"], family="intelligence", kind="outline", request=request,
        step="outline", own_family="tracks",
    )  # fmt: skip
    duration = media_duration(ctx.probe.duration, child.outline)
    if child.outline.speech_detected:
        chapters = from_sections(child.outline.timeline, duration)
    else:
        chapters = from_scenes(await scene_cuts(ctx, "scenes"), duration, opts.min_length)
    extension = ".json" if opts.format == "json" else f".{opts.format}"
    path = ctx.workdir / f"chapters{extension}"
    path.write_text(render(chapters, opts.format))
    entry = tasks_pb2.FileEntry(kind="track", type=MIME[opts.format], label="Chapters", duration=duration)
    return Outcome([Output(path=path, name=output_name(ctx.task, extension), entry=entry)])
