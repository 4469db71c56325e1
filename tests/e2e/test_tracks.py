"""The tracks kinds through the real stack: tracks_service calls intelligence_service over gRPC with
child tasks; real models, real ffmpeg, speech made by espeak-ng."""

from __future__ import annotations

import itertools
import time
import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import create, wait_done
from tests.support import Origin
from tests.support.speech import SpeechCorpus, unseen_copy
from tests.support.timed_text_rules import check_cues, parse_srt, parse_webvtt


@pytest.fixture(scope="module")
def done(api: httpx.Client, speech_origin: Origin, speech_corpus: SpeechCorpus) -> dict[str, dict[str, Any]]:
    c = speech_corpus
    url = lambda path: speech_origin.url(path.name)  # noqa: E731
    specs = {
        "subtitles": ("subtitles", url(c.monologue), {}),
        "subtitles_srt": ("subtitles", url(c.english), {"format": "srt", "max_line_length": 32}),
        "chapters": ("chapters", url(c.monologue), {}),
        "chapters_json": ("chapters", url(c.monologue), {"format": "json"}),
        "chapters_silent": ("chapters", url(c.silent_scenes), {}),
        "subtitles_no_audio": ("subtitles", url(c.no_audio), {}),
    }
    later = ("chapters", "chapters_json")  # after the subtitles' transcript exists: a cache hit
    created = {
        n: create(api, kind, u, **options) for n, (kind, u, options) in specs.items() if n not in later
    }
    finished = {"subtitles": wait_done(api, created.pop("subtitles")["id"], timeout=600)}
    created.update({n: create(api, specs[n][0], specs[n][1], **specs[n][2]) for n in later})
    return finished | {name: wait_done(api, task["id"], timeout=600) for name, task in created.items()}


def succeeded(task: dict[str, Any]) -> dict[str, Any]:
    assert task["status"] == "succeeded", task["error"]
    return task


def fetch(task: dict[str, Any]) -> tuple[dict[str, Any], str]:
    (output,) = task["outputs"]
    response = httpx.get(output["url"], timeout=10)
    assert response.status_code == 200
    return output, response.text


def test_subtitles_are_valid_webvtt_that_follows_the_cue_rules(done: dict[str, dict[str, Any]]) -> None:
    output, text = fetch(succeeded(done["subtitles"]))
    assert (output["kind"], output["type"], output["language"], output["label"]) == (
        "track",
        "text/vtt",
        "en",
        "English",
    )
    cues = parse_webvtt(text)
    assert len(cues) >= 5
    assert check_cues(cues) == []
    assert "volcano" in text.lower() and "coffee" in text.lower()


def test_srt_subtitles_keep_the_line_length_asked_for(done: dict[str, dict[str, Any]]) -> None:
    output, text = fetch(succeeded(done["subtitles_srt"]))
    assert output["type"] == "application/x-subrip"
    cues = parse_srt(text)
    assert cues and check_cues(cues, max_line_length=32) == []


def test_the_speech_child_is_listed_and_its_transcript_reused(
    api: httpx.Client, done: dict[str, dict[str, Any]]
) -> None:
    parent = succeeded(done["subtitles"])
    children = api.get("/tasks", params={"parent_id": parent["id"]}).json()
    assert [(c["kind"], c["status"]) for c in children] == [("speech", "succeeded")]
    assert children[0]["run_id"] == parent["run_id"] and children[0]["parent_id"] == parent["id"]
    chapters_child = api.get("/tasks", params={"parent_id": done["chapters"]["id"]}).json()
    assert [c["kind"] for c in chapters_child] == ["outline"]
    hits = [c["cache_hit"] for c in children + chapters_child]
    assert True in hits, "subtitles and chapters of one file transcribe once"


def test_chapters_follow_the_topics_and_scene_cuts(
    done: dict[str, dict[str, Any]], speech_corpus: SpeechCorpus
) -> None:
    output, text = fetch(succeeded(done["chapters"]))
    assert (output["kind"], output["type"]) == ("track", "text/vtt")
    cues = parse_webvtt(text)
    assert cues[0].start == 0 and abs(cues[-1].end - output["duration"]) < 0.01
    assert all(abs(a.end - b.start) < 0.001 for a, b in itertools.pairwise(cues))
    starts = [cue.start for cue in cues[1:]]
    for boundary in speech_corpus.boundaries:
        assert any(abs(start - boundary) <= 1.5 for start in starts), (boundary, starts)
    assert all(0 < len(cue.lines[0]) <= 70 and cue.end - cue.start >= 10 for cue in cues)


def test_json_chapters(done: dict[str, dict[str, Any]]) -> None:
    _, text = fetch(succeeded(done["chapters_json"]))
    chapters = httpx.Response(200, text=text).json()
    assert [c["index"] for c in chapters] == list(range(len(chapters))) and chapters[0]["start"] == 0


def test_media_without_speech_gets_scene_chapters(
    done: dict[str, dict[str, Any]], speech_corpus: SpeechCorpus
) -> None:
    _, text = fetch(succeeded(done["chapters_silent"]))
    cues = parse_webvtt(text)
    assert [c.lines[0] for c in cues] == ["Scene 1 (0:00)", "Scene 2 (0:12)", "Scene 3 (0:24)"]
    for cue, cut in zip(cues[1:], speech_corpus.silent_cuts, strict=True):
        assert abs(cue.start - cut) <= 0.2


def test_subtitles_of_a_video_without_audio_fail_with_the_childs_reason(
    done: dict[str, dict[str, Any]],
) -> None:
    task = done["subtitles_no_audio"]
    assert task["status"] == "failed" and task["error"] == "speech failed: the input has no audio stream", (
        task
    )


def test_cancelling_subtitles_cancels_the_speech_child(
    api: httpx.Client, speech_origin: Origin, speech_corpus: SpeechCorpus
) -> None:
    parent = create(
        api,
        "subtitles",
        speech_origin.url(
            unseen_copy(
                speech_corpus.long_speech,
                speech_corpus.long_speech.with_name(f"cancel_{uuid.uuid4().hex}.m4a"),
            ).name
        ),
        language="en",
    )
    deadline = time.monotonic() + 120
    while not (children := api.get("/tasks", params={"parent_id": parent["id"]}).json()) or children[0][
        "status"
    ] not in ("processing",):
        assert time.monotonic() < deadline, children
        time.sleep(0.2)
    assert api.post(f"/tasks/{parent['id']}/cancel").json()["status"] == "cancelled"
    child = wait_done(api, children[0]["id"], timeout=30)
    assert child["status"] == "cancelled", child
