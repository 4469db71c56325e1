"""``subtitles``: a timed-text track from the words of a ``speech`` child task.

The transcript comes from the intelligence service (its cache means subtitles, chapters and a
summary of one upload transcribe once); cues are built here from the word timings by the
Netflix timed-text rules (``cues``).
"""

from __future__ import annotations

from typing import Final

from transmute.intelligence.v1 import intelligence_pb2
from transmute.tasks.v1 import tasks_pb2

from taskkit.runtime import Outcome, Output, TaskContext, output_name, run_child
from tracks_service.cues import Word, build_cues
from tracks_service.options import SubtitlesOptions
from tracks_service.timed_text import to_srt, to_webvtt

MIME: Final = {"vtt": "text/vtt", "srt": "application/x-subrip"}
LABELS: Final = {
    "en": "English", "de": "Deutsch", "fr": "Français", "es": "Español", "it": "Italiano",
    "pt": "Português", "nl": "Nederlands", "ja": "日本語", "zh": "中文", "ru": "Русский",
}  # fmt: skip


def words_of(speech: tasks_pb2.SpeechResult) -> list[Word]:
    return [Word(w.start, w.end, w.text) for segment in speech.timeline for w in segment.words]


async def handle(ctx: TaskContext) -> Outcome:
    opts: SubtitlesOptions = ctx.options
    ctx.progress.plan({"speech": 19.0, "cues": 1.0})
    speech_options = intelligence_pb2.SpeechOptions(word_timestamps=True)
    if opts.language is not None:
        speech_options.language = opts.language
    child = await run_child(
        ctx, ctx.resources["clients"], family="intelligence", kind="speech",
        request=intelligence_pb2.CreateSpeechTaskRequest(options=speech_options),
        step="speech", own_family="tracks",
    )  # fmt: skip
    duration = ctx.probe.duration or child.speech.duration
    cues = build_cues(
        words_of(child.speech),
        max_line_length=opts.max_line_length,
        max_lines=opts.max_lines,
        media_duration=duration,
    )
    extension = f".{opts.format}"
    path = ctx.workdir / f"subtitles{extension}"
    path.write_text(to_webvtt(cues) if opts.format == "vtt" else to_srt(cues))
    language = child.speech.languages[0] if child.speech.languages else (opts.language or "und")
    entry = tasks_pb2.FileEntry(
        kind="track",
        type=MIME[opts.format],
        language=language,
        label=LABELS.get(language, language),
        duration=duration,
    )
    return Outcome([Output(path=path, name=output_name(ctx.task, extension), entry=entry)])
