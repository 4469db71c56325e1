"""The intelligence kinds through the real stack: real models, real ffmpeg, media made by espeak-ng.

Tasks are created up front and awaited together, so the module costs about one pass of each model
over a few clips (the worker loads each model once, before it pulls work).
"""

from __future__ import annotations

import itertools
import time
import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import create, wait_done
from tests.support import Origin
from tests.support.speech import ENGLISH, TOPICS, SpeechCorpus, unseen_copy, word_error_rate


@pytest.fixture(scope="module")
def done(api: httpx.Client, speech_origin: Origin, speech_corpus: SpeechCorpus) -> dict[str, dict[str, Any]]:
    """Every task of the module, created at once, then awaited."""
    url = lambda path: speech_origin.url(path.name)  # noqa: E731
    c = speech_corpus
    specs: dict[str, tuple[str, str, dict[str, Any]]] = {
        "english": ("speech", url(c.english), {}),
        "english_again": ("speech", url(c.english), {"word_timestamps": False}),
        "german": ("speech", url(c.german), {}),
        "silence": ("speech", url(c.silence), {}),
        "noise": ("speech", url(c.pink_noise), {}),
        "no_audio": ("speech", url(c.no_audio), {}),
        "summary": ("summary", url(c.monologue), {}),
        "outline": ("outline", url(c.monologue), {}),
        "summary_silent": ("summary", url(c.no_audio), {}),
        "nsfw_photo": ("nsfw", url(c.photo), {}),
        "nsfw_video": ("nsfw", url(c.monologue), {}),
    }
    created = {}
    for name, (kind, input_url, options) in specs.items():
        if name == "english_again":
            continue  # after the first english one: it must find the cached transcript
        created[name] = create(api, kind, input_url, **options)
    results = {name: wait_done(api, task["id"], timeout=600) for name, task in created.items()}
    kind, input_url, options = specs["english_again"]
    results["english_again"] = wait_done(api, create(api, kind, input_url, **options)["id"], timeout=120)
    return results


def succeeded(task: dict[str, Any]) -> dict[str, Any]:
    assert task["status"] == "succeeded", task["error"]
    return task


def test_speech_transcribes_english_with_word_timings(done: dict[str, dict[str, Any]]) -> None:
    task = succeeded(done["english"])
    results = task["results"]
    assert results["kind"] == "speech" and results["languages"] == ["en"]
    assert word_error_rate(ENGLISH, " ".join(results["text"])) <= 0.15, results["text"]
    assert results["speakers"] is None
    words = [w for segment in results["timeline"] for w in segment["words"]]
    assert words, results
    starts = [w["start"] for w in words]
    assert starts == sorted(starts) and all(w["start"] <= w["end"] for w in words)
    assert 0 <= starts[0] and words[-1]["end"] <= results["duration"] + 0.05
    assert task["cache_hit"] is False
    (output,) = task["outputs"]
    assert output["kind"] == "intelligence" and output["type"] == "application/json"
    stored = httpx.get(output["url"], timeout=10).json()
    assert stored == results


def test_a_second_request_for_the_same_media_is_a_cache_hit(done: dict[str, dict[str, Any]]) -> None:
    first, again = succeeded(done["english"]), succeeded(done["english_again"])
    assert again["cache_hit"] is True
    assert again["results"]["text"] == first["results"]["text"]
    assert all(segment["words"] == [] for segment in again["results"]["timeline"])


def test_speech_detects_german(done: dict[str, dict[str, Any]]) -> None:
    results = succeeded(done["german"])["results"]
    assert results["languages"] == ["de"], results
    assert any(word in " ".join(results["text"]).lower() for word in ("berlin", "morgen", "wetter"))


@pytest.mark.parametrize("name", ["silence", "noise"])
def test_silence_and_noise_give_no_words(done: dict[str, dict[str, Any]], name: str) -> None:
    results = succeeded(done[name])["results"]
    assert results["text"] == [] and results["timeline"] == [] and results["languages"] == []


def test_speech_of_a_video_without_audio_fails_clearly(done: dict[str, dict[str, Any]]) -> None:
    task = done["no_audio"]
    assert task["status"] == "failed" and task["error"] == "the input has no audio stream", task


def test_summary_tags_name_every_topic(done: dict[str, dict[str, Any]]) -> None:
    task = succeeded(done["summary"])
    results = task["results"]
    tag_words = {word for tag in results["tags"] for word in tag.lower().split()}
    for topic, names, _ in TOPICS:
        assert tag_words & names, (topic, results["tags"])
    assert 0 < len(results["title"]) <= 70 and results["description"]
    assert results["languages"] == ["en"]
    assert (task["title"], task["tags"]) == (results["title"], results["tags"]), "shown at the top level too"


def test_summary_of_media_without_speech_is_honest(done: dict[str, dict[str, Any]]) -> None:
    results = succeeded(done["summary_silent"])["results"]
    assert (results["tags"], results["languages"], results["title"]) == ([], [], "")
    assert "no speech" in results["description"] and "160×90" in results["description"], results


def test_outline_follows_the_topic_changes(
    done: dict[str, dict[str, Any]], speech_corpus: SpeechCorpus
) -> None:
    timeline = succeeded(done["outline"])["results"]["timeline"]
    assert timeline[0]["start"] == 0
    assert all(a["end"] == b["start"] for a, b in itertools.pairwise(timeline))
    inner = [section["start"] for section in timeline[1:]]
    for boundary in speech_corpus.boundaries:
        assert any(abs(start - boundary) <= 3.0 for start in inner), (boundary, timeline)
    assert all(0 < len(section["title"]) <= 70 for section in timeline)


@pytest.mark.parametrize("name", ["nsfw_photo", "nsfw_video"])
def test_nsfw_does_not_flag_benign_media(done: dict[str, dict[str, Any]], name: str) -> None:
    results = succeeded(done[name])["results"]
    assert (results["nudity"], results["sexual"], results["categories"]) == (False, False, [])
    assert results["violence"] is None and results["gore"] is None
    assert results["severity"] == {"nudity": "none", "sexual": "none", "violence": None, "gore": None}
    assert results["scores"]["frames_examined"] == len(results["scores"]["frames"]) >= 1
    assert results["timeline"] == []


def test_nsfw_video_samples_every_second(done: dict[str, dict[str, Any]]) -> None:
    frames = succeeded(done["nsfw_video"])["results"]["scores"]["frames"]
    times = [f["time"] for f in frames]
    assert times == sorted(times) and times[0] == 0
    assert all(b - a <= 1.05 for a, b in itertools.pairwise(times))


def test_cancel_stops_a_transcription(
    api: httpx.Client, speech_origin: Origin, speech_corpus: SpeechCorpus
) -> None:
    task = create(
        api,
        "speech",
        speech_origin.url(
            unseen_copy(
                speech_corpus.long_speech,
                speech_corpus.long_speech.with_name(f"cancel_{uuid.uuid4().hex}.m4a"),
            ).name
        ),
    )
    deadline = time.monotonic() + 120
    while (current := api.get(f"/tasks/{task['id']}").json())["status"] != "processing" or not current[
        "progress"
    ]:
        assert time.monotonic() < deadline and current["status"] not in ("succeeded", "failed"), current
        time.sleep(0.1)
    assert api.post(f"/tasks/{task['id']}/cancel").json()["status"] == "cancelled"
    # The worker is free again within seconds: a short transcription right after finishes.
    started = time.monotonic()
    follow = wait_done(
        api, create(api, "speech", speech_origin.url(speech_corpus.german.name))["id"], timeout=60
    )
    assert follow["status"] == "succeeded" and time.monotonic() - started < 30
