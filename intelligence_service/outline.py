"""``outline``: titled sections from topic shifts in the transcript, snapped to pauses and to scene
cuts (``text.segmentation``), contiguous from 0 to the end."""

from __future__ import annotations

from transmute.tasks.v1 import tasks_pb2

from intelligence_service.json_output import json_output
from intelligence_service.options import OutlineOptions
from intelligence_service.summary import spoken
from intelligence_service.text.segmentation import outline
from intelligence_service.transcripts import TRANSCRIPT_STEPS
from taskkit.runtime import Outcome, TaskContext, scene_cuts


async def handle(ctx: TaskContext) -> Outcome:
    opts: OutlineOptions = ctx.options
    ctx.progress.plan({**TRANSCRIPT_STEPS, "scenes": 2.0})
    transcript, cached = await spoken(ctx)
    cuts = await scene_cuts(ctx, "scenes")
    duration = ctx.probe.duration or transcript.duration
    sections = outline(
        transcript.plain(),
        duration=duration,
        scene_cuts=cuts,
        min_section=opts.min_section,
        language=transcript.language if transcript.segments else None,
    )
    result = tasks_pb2.OutlineResult(speech_detected=bool(transcript.segments))
    for section in sections:
        result.timeline.add(title=section.title, start=round(section.start, 3), end=round(section.end, 3))
    return Outcome([json_output(ctx, result)], result=result, cache_hit=cached)
