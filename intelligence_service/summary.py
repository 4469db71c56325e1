"""``summary``: title, description, tags and languages of the media, from its transcript.

Offline by default (``text.summarize``: keyphrases for tags and title, the most central sentences
for the description); an OpenAI-compatible endpoint can write title and description instead
(``llm``). Media without speech gets an honest description from what is known of it and no tags.
"""

from __future__ import annotations

from transmute.tasks.v1 import tasks_pb2

from intelligence_service import llm
from intelligence_service.json_output import json_output
from intelligence_service.options import SpeechOptions
from intelligence_service.text.summarize import summarize
from intelligence_service.transcripts import TRANSCRIPT_STEPS, Transcript, transcript_for
from taskkit.runtime import Outcome, TaskContext, scene_cuts


def no_speech_description(ctx: TaskContext, cuts: list[float]) -> str:
    seconds = ctx.probe.duration or 0.0
    video = ctx.probe.video
    if video is None:
        return f"A {seconds:.0f}-second audio recording; no speech was detected."
    shots = len(cuts) + 1
    scenes_text = "one continuous shot" if shots == 1 else f"{shots} scenes"
    return (
        f"A {seconds:.0f}-second {video.display_width}×{video.display_height} video in {scenes_text}; "
        "no speech was detected."
    )


async def spoken(ctx: TaskContext) -> tuple[Transcript, bool | None]:
    """The transcript (and whether it was cached); an empty one, no cache involved, for media
    without an audio stream, which has nothing to say rather than being an error here."""
    if ctx.probe.audio is None:
        return Transcript(language="", language_probability=0.0, duration=ctx.probe.duration or 0.0), None
    return await transcript_for(ctx, SpeechOptions())


async def handle(ctx: TaskContext) -> Outcome:
    ctx.progress.plan({**TRANSCRIPT_STEPS, "scenes": 2.0})
    transcript, cached = await spoken(ctx)
    text = " ".join(segment.text for segment in transcript.segments)
    offline = summarize(transcript.plain(), language=transcript.language or None)
    if not offline.tags:  # no speech, or nothing but filler ("Thank you.", "♪") over music
        result = tasks_pb2.SummaryResult(
            description=no_speech_description(ctx, await scene_cuts(ctx, "scenes"))
        )
        return Outcome([json_output(ctx, result)], result=result, cache_hit=cached)
    title, description = await llm.title_and_description(text, ctx.settings) or (
        offline.title,
        offline.description,
    )
    result = tasks_pb2.SummaryResult(
        title=title, description=description, tags=offline.tags, languages=[transcript.language]
    )
    return Outcome([json_output(ctx, result)], result=result, cache_hit=cached)
