"""``speech``: the transcript as segments with word timings, inline and as a JSON output."""

from __future__ import annotations

from transmute.tasks.v1 import tasks_pb2

from intelligence_service.json_output import json_output
from intelligence_service.options import SpeechOptions
from intelligence_service.transcripts import TRANSCRIPT_STEPS, Transcript, transcript_for
from taskkit.runtime import Outcome, TaskContext


def speech_result(transcript: Transcript, *, words: bool) -> tasks_pb2.SpeechResult:
    """Reference §8.8 plus words. ``speakers`` stays unset (null): no diarization model ships
    offline, and an invented speaker count would be a lie."""
    result = tasks_pb2.SpeechResult(
        text=[segment.text for segment in transcript.segments],
        languages=[transcript.language] if transcript.segments else [],
        language_probability=transcript.language_probability,
        duration=transcript.duration,
    )
    for segment in transcript.segments:
        entry = result.timeline.add(start=segment.start, end=segment.end, text=segment.text)
        if words:
            for word in segment.words:
                entry.words.add(start=word.start, end=word.end, text=word.text, probability=word.probability)
    return result


async def handle(ctx: TaskContext) -> Outcome:
    opts: SpeechOptions = ctx.options
    ctx.progress.plan(TRANSCRIPT_STEPS)
    transcript, cached = await transcript_for(ctx, opts)
    result = speech_result(transcript, words=opts.word_timestamps)
    return Outcome([json_output(ctx, result)], result=result, cache_hit=cached)
