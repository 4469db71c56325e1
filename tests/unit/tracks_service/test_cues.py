"""Subtitle cues by the Netflix timed-text rules, and the WebVTT and SRT writers (pure, fast).

The real words are faster-whisper's timings for the espeak-ng monologue of the e2e tests
(tests/unit/data/words_monologue.tsv, made by transcribing tests/support/speech.py's TOPICS);
the synthetic ones pin the edge cases. Every built list is judged by the independent checker in
tests/support/timed_text_rules.py, and the checker is itself shown to catch each rule.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import webvtt
from transmute.tasks.v1 import tasks_pb2

from taskkit.errors import InputError
from tests.support.timed_text_rules import check_cues, parse_srt, parse_webvtt
from tracks_service.chapters import from_sections, media_duration
from tracks_service.cues import Cue, Word, build_cues, line_break
from tracks_service.timed_text import to_srt, to_webvtt

DATA = Path(__file__).parents[1] / "data"
CLIP_DURATION = 57.175  # the transcribed clip's length
GAP = 2 / 24  # two frames at 24 fps


def monologue() -> list[Word]:
    rows = (line.split("\t") for line in (DATA / "words_monologue.tsv").read_text().splitlines())
    return [Word(float(start), float(end), text) for start, end, text in rows if not start.startswith("#")]


def spoken(text: str, start: float = 0.0, per_char: float = 0.07) -> list[Word]:
    """Contiguous words, each lasting in proportion to its length (about 15 characters/s)."""
    words = []
    for token in text.split():
        duration = per_char * len(token) + 0.05
        words.append(Word(round(start, 3), round(start + duration, 3), token))
        start += duration
    return words


def shown(cues: list[Cue]) -> str:
    return " ".join(line for cue in cues for line in cue.lines)


@pytest.mark.parametrize(("max_line_length", "max_lines"), [(42, 2), (32, 2), (32, 1), (20, 3), (80, 1)])
def test_the_real_transcript_keeps_every_rule(max_line_length: int, max_lines: int) -> None:
    words = monologue()
    cues = build_cues(
        words, max_line_length=max_line_length, max_lines=max_lines, media_duration=CLIP_DURATION
    )
    limits: dict[str, Any] = {
        "max_line_length": max_line_length,
        "max_lines": max_lines,
        "media_duration": CLIP_DURATION,
    }
    assert check_cues(cues, words=words, **limits) == []
    assert check_cues(parse_webvtt(to_webvtt(cues)), words=words, **limits) == []
    assert check_cues(parse_srt(to_srt(cues)), words=words, **limits) == []
    assert check_cues(parse_webvtt(to_webvtt(cues)), **limits) == []  # what the e2e sees: no words
    assert shown(cues) == " ".join(w.text for w in words)


def test_the_real_transcript_gets_a_cue_per_sentence_in_balanced_lines() -> None:
    cues = build_cues(monologue(), media_duration=CLIP_DURATION)
    sentences = sum(w.text.endswith(".") for w in monologue())
    assert len(cues) == sentences == 15
    assert all(cue.lines[-1].endswith(".") for cue in cues)
    two_line = [cue.lines for cue in cues if len(cue.lines) == 2]
    assert len(two_line) >= 10
    assert all(len(top) <= len(bottom) + 6 for top, bottom in two_line)  # a pyramid, or nearly


def test_one_word_is_held_to_the_minimum_past_the_half_second_tail() -> None:
    (cue,) = build_cues([Word(1.0, 1.2, "Hello.")])
    assert cue == Cue(1.0, 1.833, ("Hello.",))  # 5/6 s wins over "0.5 s after the word" in the silence


def test_the_minimum_gives_way_to_the_next_word() -> None:
    words = [Word(1.0, 1.2, "Yes."), Word(3.0, 3.2, "No,"), *spoken("I said no more cake today.", 3.25)]
    cues = build_cues(words)
    assert check_cues(cues, words=words) == []
    # "Yes." has a pause after it; "No," runs into the next words, so it shares their cue.
    assert [c.lines for c in cues] == [("Yes.",), ("No, I said no more cake today.",)]
    assert cues[0].end == 1.833


def test_a_short_sentence_joins_the_next_rather_than_flash() -> None:
    words = [Word(0.0, 0.25, "Yes."), *spoken("I think we should go home now.", 0.3)]
    cues = build_cues(words)
    assert [c.lines for c in cues] == [("Yes. I think we should go home now.",)]
    assert check_cues(cues, words=words) == []


def test_sentences_long_enough_to_stand_get_their_own_cues() -> None:
    words = spoken("The rain stopped at noon. We walked down to the harbour.")
    cues = build_cues(words)
    assert [c.lines for c in cues] == [("The rain stopped at noon.",), ("We walked down to the harbour.",)]
    assert check_cues(cues, words=words) == []


def test_a_30_second_monologue_without_punctuation() -> None:
    words = spoken(
        "we walked along the river with the old dog and talked about the weather in the small town "
        "where my grandmother lived for many years before she moved to the city because the winters "
        "were long and the roads were closed for weeks at a time so nobody could visit her until the "
        "spring came back again and the birds returned to the garden behind the house where we used to "
        "play as children every summer and we still remember the smell of the apple trees in the rain"
    )
    assert words[-1].end > 30
    for max_line_length, max_lines in ((42, 2), (32, 1)):
        cues = build_cues(words, max_line_length=max_line_length, max_lines=max_lines)
        limits = {"max_line_length": max_line_length, "max_lines": max_lines}
        assert check_cues(cues, words=words, **limits) == []
        assert all(cue.end - cue.start <= 7.0 for cue in cues)
        assert shown(cues) == " ".join(w.text for w in words)


def test_slow_speech_is_split_at_7_seconds() -> None:
    words = spoken("one two six ten red big old new far low " * 2, per_char=0.18)  # 84 characters, 12 s
    cues = build_cues(words)
    assert len(cues) == 2 and all(5 < cue.end - cue.start <= 7.0 for cue in cues)
    assert check_cues(cues, words=words) == []


def test_a_gap_under_12_frames_is_closed_to_2() -> None:
    words = [*spoken("It rained all day."), *spoken("We stayed in.", 1.6)]
    cues = build_cues(words)
    assert words[3].end == 1.25 and cues[0].end == 1.516  # not 1.25: chained 2 frames before 1.6
    assert check_cues(cues, words=words) == []


def test_speech_faster_than_20_cps_stays_as_long_as_the_rules_allow() -> None:
    words = [Word(round(i * 0.2, 3), round(i * 0.2 + 0.2, 3), "extraordinary") for i in range(40)]
    words.append(Word(12.0, 12.6, "Fine."))
    cues = build_cues(words)
    assert check_cues(cues, words=words) == []
    fast = [c for c in cues if sum(map(len, c.lines)) / (c.end - c.start) > 20]
    assert len(fast) >= 5
    for cue, following in itertools.pairwise(cues):
        if cue in fast and following.start < 8:  # inside the speech: up to 2 frames before the next cue
            assert following.start - cue.end == pytest.approx(GAP, abs=0.001)
    last_fast = fast[-1]
    assert last_fast.end == pytest.approx(8.0 + 0.5)  # after the speech: the half-second tail, no more


def test_long_pauses_start_new_cues_and_short_ones_do_not() -> None:
    words = [*spoken("one two three"), *spoken("four five", 4.0), *spoken("six seven", 5.6)]
    cues = build_cues(words)
    assert [c.lines for c in cues] == [("one two three",), ("four five six seven",)]
    assert check_cues(cues, words=words) == []


def test_a_word_longer_than_a_line_is_hyphenated_not_cut() -> None:
    long_word = "Pneumonoultramicroscopicsilicovolcanoconiosis"  # 45 characters
    words = [*spoken("He had"), Word(0.6, 3.0, long_word), *spoken("again.", 3.0)]
    cues = build_cues(words)
    assert cues[0].lines == ("He had", long_word[:41] + "-") and cues[1].lines[0].startswith("osis")
    assert check_cues(cues, words=words) == []
    narrow = build_cues(words, max_line_length=20, max_lines=1)
    assert [c.lines[0] for c in narrow[1:3]] == [long_word[:19] + "-", long_word[19:38] + "-"]
    assert narrow[3].lines[0].startswith(long_word[38:])
    assert check_cues(narrow, words=words, max_line_length=20, max_lines=1) == []


def test_no_line_or_cue_breaks_between_an_article_and_its_noun() -> None:
    # Balance alone would break after "the" (18 / 21 characters).
    assert line_break("we finally met the president of the club".split(), 25, 2) == (
        "we finally met",
        "the president of the club",
    )
    words = spoken("we finally met the president")
    cues = build_cues(words, max_line_length=20, max_lines=1)
    assert [c.lines for c in cues] == [("we finally met",), ("the president",)]
    assert check_cues(cues, words=words, max_line_length=20, max_lines=1) == []


def test_the_last_cue_stops_at_the_end_of_the_media() -> None:
    words = [*spoken("And that is all."), Word(9.7, 9.95, "Thanks.")]
    cues = build_cues(words, media_duration=10.0)
    assert cues[-1] == Cue(9.7, 10.0, ("Thanks.",))
    assert check_cues(cues, words=words, media_duration=10.0) == []
    assert any("under 5/6 s" in p for p in check_cues(cues, words=words))  # only the media's end excuses it


@pytest.mark.parametrize(
    ("text", "max_line_length", "max_lines", "expected"),
    [
        ("Short enough for one line", 42, 2, ("Short enough for one line",)),
        (
            "When the rain stopped, we went out to the garden",
            30,
            2,
            ("When the rain stopped,", "we went out to the garden"),
        ),
        ("When it stopped raining, we went out", 30, 2, ("When it stopped raining,", "we went out")),
        (
            "I wanted to stay longer but the train was leaving soon",
            32,
            2,
            ("I wanted to stay longer", "but the train was leaving soon"),
        ),
        ("Small brown bees buzzed again", 25, 2, ("Small brown", "bees buzzed again")),  # pyramid
        (
            "the quick brown fox jumps over the lazy dog",
            30,
            3,
            ("the quick brown fox jumps", "over the lazy dog"),
        ),  # the fewest lines that fit, broken before a preposition
        ("the quick brown fox jumps over the lazy dog", 10, 3, None),
        ("Pneumonoultramicroscopicsilicovolcanoconiosis", 42, 2, None),
    ],
)
def test_line_break(
    text: str, max_line_length: int, max_lines: int, expected: tuple[str, ...] | None
) -> None:
    assert line_break(text.split(), max_line_length, max_lines) == expected


def test_words_piled_at_one_instant_still_make_ordered_cues() -> None:
    words = [Word(5.0, 5.0, f"word{i}") for i in range(30)]
    cues = build_cues(words)
    assert len(cues) == 3 and shown(cues) == " ".join(w.text for w in words)
    assert all(c.end - c.start >= 1 / 24 for c in cues)
    assert all(b.start - a.end >= GAP for a, b in itertools.pairwise(cues))


def test_words_out_of_order_are_put_in_order() -> None:
    words = spoken("The rain stopped at noon. We walked down to the harbour.")
    assert build_cues(words[::-1]) == build_cues(words)


def test_nothing_to_say_and_impossible_limits() -> None:
    assert build_cues([]) == [] and build_cues([Word(0, 1, "  ")]) == []
    with pytest.raises(ValueError, match="max_line_length"):
        build_cues(spoken("hi"), max_line_length=1)


CUES = [
    Cue(0.0, 2.5, ("Fish & chips <3",)),
    Cue(2.584, 5.0, ("a --> b", "second line")),
    Cue(3725.5, 3727.25, ("An hour later.",)),
]


def test_webvtt_text_is_exact_escaped_and_read_back_by_webvtt_py() -> None:
    text = to_webvtt(CUES)
    assert text == (
        "WEBVTT\n\n"
        "00:00:00.000 --> 00:00:02.500\nFish &amp; chips &lt;3\n\n"
        "00:00:02.584 --> 00:00:05.000\na --&gt; b\nsecond line\n\n"
        "01:02:05.500 --> 01:02:07.250\nAn hour later.\n\n"
    )
    assert parse_webvtt(text) == CUES
    assert parse_webvtt(to_webvtt([])) == []
    assert to_webvtt([Cue(-0.0004, 0.5, ("early",))]).startswith("WEBVTT\n\n00:00:00.000 --> 00:00:00.500\n")
    assert to_srt([Cue(-1.0, 0.5, ("early",))]).startswith("1\n00:00:00,000 --> 00:00:00,500\n")


def test_srt_text_is_exact_and_read_back(tmp_path: Path) -> None:
    text = to_srt(CUES)
    assert text.startswith("1\n00:00:00,000 --> 00:00:02,500\nFish & chips <3\n\n2\n00:00:02,584 --> ")
    assert parse_srt(text) == CUES
    path = tmp_path / "cues.srt"
    path.write_text(text)
    assert [(c.start, c.end, c.text) for c in webvtt.from_srt(str(path)).captions][2] == (
        "01:02:05.500",
        "01:02:07.250",
        "An hour later.",
    )
    assert to_srt([]) == "" and parse_srt("") == []


def test_chapter_cues_share_the_writers_and_a_blank_line_cannot_end_a_cue_early() -> None:
    chapters = [Cue(0.0, 12.0, ("Scene 1 (0:00)\n\nIntro",)), Cue(12.0, 24.0, ("Scene 2 (0:12)",))]
    expected = [Cue(0.0, 12.0, ("Scene 1 (0:00)", "Intro")), chapters[1]]
    assert parse_webvtt(to_webvtt(chapters)) == expected
    assert parse_srt(to_srt(chapters)) == expected


def test_parse_srt_refuses_a_malformed_file() -> None:
    with pytest.raises(ValueError, match="malformed"):
        parse_srt("1\n00:00:00.000 --> 00:00:01.000\nhello\n")
    with pytest.raises(ValueError, match="malformed"):
        parse_srt("2\n00:00:00,000 --> 00:00:01,000\nhello\n")


HELLO = [Word(0.0, 0.4, "Hello"), Word(0.4, 1.0, "world.")]


@pytest.mark.parametrize(
    ("cues", "words", "options", "problem"),
    [
        ([Cue(0, 2, ("x" * 43,))], None, {}, "of 43 characters, over 42"),
        ([Cue(0, 2, ("one", "two", "three"))], None, {"max_line_length": 4}, "3 lines, over 2"),
        ([Cue(0, 2, ("Hello", "world."))], None, {}, "2 lines where 1 fit"),
        ([Cue(0, 2, (" Hello",))], None, {}, "blank or padded line"),
        ([Cue(0, 2, ("We saw the", "dog run"))], None, {"max_line_length": 12}, "after the article 'the'"),
        ([Cue(0, 2, ("We saw the", "hippopotamus"))], None, {"max_line_length": 12}, ""),  # cannot join
        ([Cue(0, 8, ("Hi",))], None, {}, "over 7.0 s"),
        ([Cue(0, 0.5, ("Hi",))], None, {}, "under 5/6 s, with room"),
        ([Cue(0, 1, ("a",)), Cue(1.05, 2, ("b",))], None, {}, "under 2 frames"),
        ([Cue(2, 3, ("a",)), Cue(0, 1, ("b",))], None, {}, "the next cue starts earlier"),
        ([Cue(0, 2, ("a",))], None, {"media_duration": 1.5}, "ends after the media"),
        ([Cue(1, 1, ("a",))], None, {}, "not a positive time span"),
        ([Cue(0, 1, ("x" * 30,))], None, {}, "over 20.0, with room"),
        ([Cue(0, 2, ())], None, {}, "no text"),
        ([Cue(0, 1.5, ())], HELLO, {}, "shows no words"),
        ([Cue(0, 1.5, ("Hello there.",))], HELLO, {}, "is not the words'"),
        ([Cue(0, 1.5, ("Hello",))], HELLO, {}, "leave out the words"),
        ([Cue(0.3, 1.5, ("Hello world.",))], HELLO, {}, "from its first word"),
        (
            [Cue(0, 1.5, ("a" * 41 + "-",)), Cue(2.5, 3.3, ("a" * 9,))],
            [Word(0, 2.0, "a" * 50)],
            {},
            "cue 1 (2.500-3.300 'aaaaaaaaa'): starts outside the word it continues",
        ),
        ([Cue(0, 2, ("Hello world.",))], HELLO, {}, "after its last word, over 0.5 s"),
        ([Cue(0, 0.9, ("Hello world.",))], HELLO, {}, "before its last word does"),
        ([Cue(0, 1.2, ("Hello world.",))], [Word(0, 0.5, "Hello"), Word(0.5, 1.0, "world.")], {}, ""),
        ([Cue(0, 1.05, ("x" * 18,))], [Word(0, 1.0, "x" * 18)], {}, "over 17.0, though it could stay"),
        ([Cue(0, 3, ("a b",))], [Word(0, 0.5, "a"), Word(1.8, 2.5, "b")], {}, "pause inside"),
        (
            [Cue(0, 3, ("It rained. We stayed.",))],
            [Word(0, 0.5, "It"), Word(0.5, 1.0, "rained."), Word(1.2, 1.8, "We"), Word(1.8, 2.5, "stayed.")],
            {},
            "runs on past the sentence end 'rained.'",
        ),
        (
            [Cue(0, 1.4, ("We saw the",)), Cue(1.5, 2.5, ("dog.",))],
            [Word(0, 0.5, "We"), Word(0.5, 1.0, "saw"), Word(1.0, 1.5, "the"), Word(1.5, 2.0, "dog.")],
            {},
            "the next cue takes the noun of its last word 'the'",
        ),
        (
            [Cue(0, 1.5, ("We saw the",)), Cue(3.0, 4.0, ("dog.",))],
            [Word(0, 0.5, "We"), Word(0.5, 1.0, "saw"), Word(1.0, 1.5, "the"), Word(3.0, 3.5, "dog.")],
            {},
            "",  # the speaker paused after "the": the noun is the next cue's
        ),
    ],
)
def test_the_checker_catches_each_rule(
    cues: list[Cue], words: list[Word] | None, options: dict[str, Any], problem: str
) -> None:
    problems = check_cues(cues, words=words, **options)
    if problem:
        assert any(problem in p for p in problems), problems
    else:
        assert problems == []


def test_chapters_cover_media_whose_container_stores_no_duration() -> None:
    """A WebM written to a pipe probes without a duration: the outline's end stands in for it."""
    outline = tasks_pb2.OutlineResult(
        timeline=[tasks_pb2.OutlineSection(title="One", start=0, end=12.5)], speech_detected=True
    )
    assert media_duration(None, outline) == 12.5
    assert media_duration(30.0, outline) == 30.0
    chapters = from_sections(outline.timeline, media_duration(None, outline))
    assert [(c.start, c.end) for c in chapters] == [(0.0, 12.5)]
    with pytest.raises(InputError, match="no duration"):
        media_duration(None, tasks_pb2.OutlineResult())
