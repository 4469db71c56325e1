"""The intelligence family's pure parts: options, verdicts, frame selection argv, the transcript
cache's key and layout, and the result JSON every kind shares."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from transmute.tasks.v1 import tasks_pb2

from gateway.api import task_json
from intelligence_service import nsfw
from intelligence_service.options import (
    SpeechOptions,
    parse_nsfw_options,
    parse_outline_options,
    parse_speech_options,
)
from intelligence_service.transcripts import TimedSegment, Transcript, Word, _without_loops, cache_key
from taskkit.errors import InvalidRequest
from taskkit.media import ProbeResult, scenes
from taskkit.options.languages import SPEECH_LANGUAGES
from taskkit.records import message_json, result_json

# --- options ---------------------------------------------------------------------------------------


def test_speech_options_default_to_the_reference_behaviour() -> None:
    opts = parse_speech_options({})
    assert opts == SpeechOptions(
        language=None, task="transcribe", word_timestamps=True, vad=True, prompt=None
    )
    assert opts.to_dict() == {"task": "transcribe", "word_timestamps": True, "vad": True}
    assert parse_speech_options({"language": "DE", "task": "translate"}).language == "de"


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"language": "english"}, "options.language must be a language code speech recognition knows"),
        ({"language": "xx"}, "options.language must be a language code speech recognition knows"),
        ({"task": "summarize"}, "options.task must be one of transcribe, translate"),
        ({"vad": "yes"}, "options.vad must be true or false"),
        ({"prompt": "x" * 1001}, "options.prompt must be a non-empty text"),
        ({"speakers": True}, "options.speakers is not a known option for kind speech"),
    ],
)
def test_bad_speech_options_name_the_field(raw: dict, fragment: str) -> None:
    with pytest.raises(InvalidRequest, match=fragment):
        parse_speech_options(raw)


def test_nsfw_takes_no_options_and_outline_bounds_its_section() -> None:
    with pytest.raises(
        InvalidRequest, match=re.escape("options.threshold is not a known option for kind nsfw")
    ):
        parse_nsfw_options({"threshold": 0.5})
    assert parse_outline_options({}).min_section == 10.0
    with pytest.raises(
        InvalidRequest, match=re.escape("options.min_section must be a number of seconds from 1 to 3600")
    ):
        parse_outline_options({"min_section": 0})


# --- nsfw verdicts ---------------------------------------------------------------------------------


def test_a_benign_verdict_says_what_was_not_judged() -> None:
    result = message_json(nsfw.verdict([(0.0, 0.01), (1.0, 0.05)], video=True))
    assert (result["nudity"], result["sexual"], result["violence"], result["gore"]) == (
        False,
        False,
        None,
        None,
    )
    assert result["categories"] == [] and result["timeline"] == []
    assert result["severity"] == {"nudity": "none", "sexual": "none", "violence": None, "gore": None}
    assert result["scores"] == {
        "nsfw": 0.05,
        "frames_examined": 2,
        "frames": [{"time": 0.0, "nsfw": 0.01}, {"time": 1.0, "nsfw": 0.05}],
    }
    assert "not assessed" in result["description"]


def test_adjacent_flagged_frames_merge_into_one_timeline_entry() -> None:
    frames = [(0.0, 0.1), (1.0, 0.9), (2.0, 0.95), (3.0, 0.1), (4.0, 0.85)]
    result = nsfw.verdict(frames, video=True)
    assert result.nudity and result.sexual and list(result.categories) == ["nudity", "sexual"]
    runs = [(e.start, e.end, e.category, e.severity) for e in result.timeline]
    assert runs == [
        (1.0, 3.0, "nudity", "severe"),
        (1.0, 3.0, "sexual", "severe"),
        (4.0, 5.0, "nudity", "severe"),
        (4.0, 5.0, "sexual", "severe"),
    ]


def test_an_image_verdict_has_no_timeline() -> None:
    result = nsfw.verdict([(0.0, 0.97)], video=False)
    assert result.nudity and list(result.timeline) == [] and "the image" in result.description


# --- frame selection -------------------------------------------------------------------------------


def _probe() -> ProbeResult:
    return ProbeResult(format_name="mov,mp4,m4a,3gp,3g2,mj2", mime_type="video/mp4", duration=10.0, size=1)


def test_nsfw_frames_are_one_per_second_plus_scene_changes_at_the_model_size() -> None:
    argv = scenes.nsfw_frames_argv(Path("in"), _probe(), "f.rgb", "t.txt", max_frames=7, ffmpeg="ffmpeg")
    graph = argv[argv.index("-vf") + 1]
    assert graph.startswith("select='isnan(prev_selected_t)+gte(t-prev_selected_t\\,0.999)+gt(scene\\,0.3)'")
    assert "scale=256:256:flags=bilinear" in graph and "metadata=mode=print:file=t.txt" in graph
    assert argv[argv.index("-frames:v") + 1] == "7" and argv[-3:] == ["-f", "rawvideo", "f.rgb"]
    assert argv[argv.index("-i") - 2 : argv.index("-i")] == ["-f", "mov"], (
        "the probed demuxer, never re-detected"
    )


def test_parse_times_reads_the_metadata_filter_output() -> None:
    printed = (
        "frame:0    pts:0       pts_time:0\nlavfi.scene_score=0.000\nframe:1    pts:15360   pts_time:1.2\n"
    )
    assert scenes.parse_times(printed) == [0.0, 1.2]


# --- transcripts -----------------------------------------------------------------------------------


def test_the_cache_key_ignores_word_timestamps_and_nothing_else() -> None:
    base = cache_key("p", "abc", "model", SpeechOptions())
    assert cache_key("p", "abc", "model", SpeechOptions(word_timestamps=False)) == base
    assert base.startswith("p/_transcripts/abc-") and base.endswith(".json")
    others = {
        cache_key("q", "abc", "model", SpeechOptions()),
        cache_key("p", "abd", "model", SpeechOptions()),
        cache_key("p", "abc", "model2", SpeechOptions()),
        cache_key("p", "abc", "model", SpeechOptions(language="en")),
        cache_key("p", "abc", "model", SpeechOptions(task="translate")),
        cache_key("p", "abc", "model", SpeechOptions(vad=False)),
        cache_key("p", "abc", "model", SpeechOptions(prompt="Kubernetes")),
    }
    assert base not in others and len(others) == 7


def test_a_transcript_survives_the_cache_layout() -> None:
    words = (Word(0.0, 0.4, "hello", 0.9), Word(0.5, 0.9, "world", 0.8))
    transcript = Transcript("en", 0.99, 2.0, (TimedSegment(0.0, 1.0, "hello world", words),))
    assert Transcript.from_json(transcript.to_json()) == transcript


def test_a_looping_segment_keeps_its_first_words() -> None:
    looped = "thank you thank you thank you thank you"
    words = tuple(Word(i * 0.3, i * 0.3 + 0.2, w, 0.9) for i, w in enumerate(looped.split()))
    cleaned = _without_loops([TimedSegment(0.0, 3.0, looped, words)])
    assert [s.text for s in cleaned] == ["thank you"] and [w.text for w in cleaned[0].words] == [
        "thank",
        "you",
    ]


# --- result JSON -----------------------------------------------------------------------------------


def test_every_result_field_is_present_and_unset_optionals_are_null() -> None:
    task = tasks_pb2.Task(id="task_x", kind="speech", speech=tasks_pb2.SpeechResult(duration=0.0))
    assert result_json(task) == {
        "kind": "speech",
        "text": [],
        "languages": [],
        "speakers": None,
        "timeline": [],
        "language_probability": 0.0,
        "duration": 0.0,
    }
    assert result_json(tasks_pb2.Task(id="task_y", kind="image")) is None


def test_a_summary_is_shown_at_the_task_top_level_too() -> None:
    summary = tasks_pb2.SummaryResult(title="T", description="D", tags=["a"], languages=["en"])
    body = task_json(tasks_pb2.Task(id="task_z", kind="summary", status=1, summary=summary, cache_hit=True))
    assert (body["title"], body["description"], body["tags"], body["languages"]) == ("T", "D", ["a"], ["en"])
    assert body["results"]["kind"] == "summary" and body["cache_hit"] is True
    assert "cache_hit" not in task_json(tasks_pb2.Task(id="task_w", kind="image", status=1))


def test_the_speech_languages_are_whispers() -> None:
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    assert set(_LANGUAGE_CODES) == SPEECH_LANGUAGES
