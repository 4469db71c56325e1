"""The transcript text analytics (intelligence_service.text) on a talk whose topic changes are known:
twelve sentences each on coffee brewing, volcanoes and electric cars and a closing line, timed like
speech."""

from __future__ import annotations

import itertools
import random
import re

import pytest

from intelligence_service.text import Segment
from intelligence_service.text.keyphrases import keyphrases, phrase_title
from intelligence_service.text.repetition import remove_repetitions
from intelligence_service.text.segmentation import Section, outline
from intelligence_service.text.summarize import Summary, summarize

COFFEE = [
    "Good morning everyone, let's start with coffee and how we brew it at home.",
    "Every good cup begins with fresh beans that were roasted within the last few weeks.",
    "Grind the beans right before brewing, because ground coffee loses its aroma quickly.",
    "A burr grinder gives an even grind size, which matters more than most people think.",
    "For a pour-over, aim for a medium grind and water just below boiling.",
    "Pour slowly in circles so the coffee bed stays flat and the extraction stays even.",
    "A French press needs a coarse grind and about four minutes of steeping.",
    "Espresso is the opposite extreme, with a fine grind and nine bars of pressure.",
    "If your espresso tastes sour, the shot ran too fast and the beans are under-extracted.",
    "If the cup tastes bitter, the grind is too fine or the brewing took too long.",
    "Weigh your coffee and your water, a ratio of one to sixteen is a good starting point.",
    "Finally, clean your grinder and brewer every week, because old oils ruin the flavour.",
]
VOLCANOES = [
    "Now let's leave the kitchen and travel to a volcano.",
    "A volcano forms where magma from the mantle rises through cracks in the crust.",
    "Most volcanoes sit along plate boundaries, like the Ring of Fire around the Pacific.",
    "When the magma is runny and poor in gas, lava flows out gently, as in Hawaii.",
    "Sticky magma traps gas, and the pressure builds until the volcano explodes.",
    "An explosive eruption throws ash and rock high into the atmosphere.",
    "Volcanic ash can ground aircraft and cool the climate for a year or more.",
    "Pyroclastic flows of hot gas and ash race down the slopes faster than a car.",
    "Geologists watch earthquakes, ground swelling and gas emissions to forecast an eruption.",
    "Iceland is a great place to see lava fields, craters and active volcanoes up close.",
    "Over millions of years, lava and ash build fertile soil that farmers value.",
    "So volcanoes destroy landscapes, but they also create new land and new islands.",
]
CARS = [
    "The last topic is electric cars and how they change the way we drive.",
    "An electric car stores its energy in a large lithium-ion battery pack under the floor.",
    "Battery capacity is measured in kilowatt hours and decides the driving range.",
    "Most owners charge at home overnight from a wall box in the garage.",
    "On a road trip, fast chargers refill the battery to eighty percent in about half an hour.",
    "Electric motors deliver full torque instantly, so even a small car feels quick.",
    "Regenerative braking turns the motor into a generator and recovers energy when you slow down.",
    "Cold weather reduces the range, because the battery and the cabin need heating.",
    "Charging networks are growing quickly along highways across Europe.",
    "The battery is the most expensive part, but prices have fallen every year.",
    "An electric car has fewer moving parts, so maintenance costs less than with a petrol engine.",
    "Used electric cars are getting cheaper, and their batteries often outlast the warranty.",
]
CLOSING = "Thank you for listening, and enjoy your next coffee on the road."
TALK = [*COFFEE, *VOLCANOES, *CARS, CLOSING]
TOPIC_WORDS = {
    "coffee": {"coffee", "grind", "grinder", "beans", "espresso", "brewing", "cup"},
    "volcanoes": {"volcano", "volcanoes", "magma", "lava", "ash", "eruption", "gas"},
    "cars": {"electric", "car", "cars", "battery", "motor", "motors", "charging", "range"},
}
DURATION = 150.0


def timed(sentences: list[str]) -> list[Segment]:
    """One segment per sentence, 3-4 s long, with 0.4-0.7 s pauses, like Whisper on a calm talk."""
    segments, clock = [], 0.0
    for index, sentence in enumerate(sentences):
        length = 3.0 + (index % 3) * 0.5
        segments.append(Segment(round(clock, 2), round(clock + length, 2), sentence))
        clock += length + 0.4 + (index % 2) * 0.3
    return segments


SEGMENTS = timed(TALK)
# The true topic changes: the middle of the pause after the last coffee and last volcano sentence.
CHANGES = [(SEGMENTS[i].end + SEGMENTS[i + 1].start) / 2 for i in (11, 23)]


def words_of(phrases: list[str]) -> set[str]:
    return {word for phrase in phrases for word in re.findall(r"\w+", phrase.lower())}


def assert_contiguous(sections: list[Section], duration: float) -> None:
    assert sections[0].start == 0.0
    assert sections[-1].end == duration
    assert all(a.end == b.start for a, b in itertools.pairwise(sections))


# --- summary -------------------------------------------------------------------------------------


def test_tags_cover_every_topic_not_only_the_first() -> None:
    tags = summarize(SEGMENTS, language="en").tags

    assert 3 <= len(tags) <= 10
    assert len({tag.lower() for tag in tags}) == len(tags)
    # Round-robin over the topics: each one's best phrase comes before any topic's second best.
    for tag, (topic, vocabulary) in zip(tags, TOPIC_WORDS.items(), strict=False):
        assert words_of([tag]) & vocabulary, f"{tag!r} is not about {topic}: {tags}"


def test_a_topic_that_comes_back_does_not_repeat_its_tags() -> None:
    tags = summarize(timed([*COFFEE, *VOLCANOES, *COFFEE]), language="en").tags

    assert len({tag.lower() for tag in tags}) == len(tags), tags
    assert words_of(tags) & TOPIC_WORDS["volcanoes"]


def test_title_names_each_topic_within_70_characters() -> None:
    title = summarize(SEGMENTS, language=None).title

    assert 0 < len(title) <= 70
    assert title[0].isupper()
    for topic, vocabulary in TOPIC_WORDS.items():
        assert words_of([title]) & vocabulary, f"title {title!r} misses {topic}"


def test_phrase_title_drops_phrases_rather_than_exceed_70_characters() -> None:
    phrases = ["regenerative braking systems", "pyroclastic density currents", "burr grinder maintenance"]

    assert phrase_title(phrases, code="en") == "Regenerative braking systems and pyroclastic density currents"
    long = phrase_title(["word " * 30], code="en")
    assert len(long) <= 70
    assert long.endswith("…")


def test_description_is_two_or_three_central_sentences_in_spoken_order() -> None:
    description = summarize(SEGMENTS, language="en").description

    assert len(description) <= 400
    picked = [sentence for sentence in TALK if sentence in description]
    assert 2 <= len(picked) <= 3
    assert " ".join(picked) == description


def test_description_keeps_spoken_order_when_the_most_central_sentence_comes_last() -> None:
    sentences = [
        "Lava flows slowly downhill from the crater.",
        "Thick ash clouds darken the sky for days.",
        "Farmers later grow grapes in the fertile soil.",
        "Every volcano releases lava, ash and gas when the crater erupts.",
    ]

    description = summarize(timed(sentences), language="en").description

    assert sentences[-1] in description
    picked = [sentence for sentence in sentences if sentence in description]
    assert len(picked) >= 2
    assert " ".join(picked) == description


def test_description_does_not_say_a_sentence_twice() -> None:
    description = summarize(timed(TALK * 3), language="en").description

    picked = [sentence for sentence in TALK if sentence in description]
    assert 2 <= len(picked) <= 3
    assert " ".join(picked) == description


def test_summary_of_no_speech_is_empty() -> None:
    empty = Summary("", "", [])

    assert summarize([], language=None) == empty
    assert summarize([Segment(0, 5, "   "), Segment(5, 9, "")], language="en") == empty
    assert summarize([Segment(0, 5, "..."), Segment(5, 9, "♪ ♪")], language=None) == empty


# --- outline -------------------------------------------------------------------------------------


def assert_cuts_at_the_changes(topics: list[list[str]], vocabularies: list[set[str]]) -> None:
    segments = timed([*itertools.chain.from_iterable(topics), CLOSING])
    changes = [(segments[i - 1].end + segments[i].start) / 2 for i in (12, 24)]

    sections = outline(segments, duration=DURATION, scene_cuts=[], language="en")

    assert_contiguous(sections, DURATION)
    boundaries = [section.start for section in sections[1:]]
    assert len(boundaries) == len(changes), (boundaries, changes)
    for found, change in zip(boundaries, changes, strict=True):
        assert abs(found - change) <= 3.0, (boundaries, changes)
    assert all(0 < len(section.title) <= 70 for section in sections)
    for section, vocabulary in zip(sections, vocabularies, strict=True):
        assert words_of([section.title]) & vocabulary, section


@pytest.mark.parametrize("order", list(itertools.permutations(TOPIC_WORDS)))
def test_outline_cuts_at_the_topic_changes(order: tuple[str, ...]) -> None:
    sentences = {"coffee": COFFEE, "volcanoes": VOLCANOES, "cars": CARS}
    assert_cuts_at_the_changes([sentences[t] for t in order], [TOPIC_WORDS[t] for t in order])


def test_outline_cuts_at_the_topic_changes_whatever_the_sentence_order_within_topics() -> None:
    for seed in range(20):
        rng = random.Random(seed)
        topics = [rng.sample(topic, len(topic)) for topic in (COFFEE, VOLCANOES, CARS)]
        assert_cuts_at_the_changes(topics, list(TOPIC_WORDS.values()))


@pytest.mark.parametrize("topic", [COFFEE, VOLCANOES, CARS], ids=list(TOPIC_WORDS))
def test_a_single_topic_talk_is_one_section(topic: list[str]) -> None:
    segments = timed(topic)

    sections = outline(segments, duration=segments[-1].end, scene_cuts=[], language="en")

    assert [(s.start, s.end) for s in sections] == [(0.0, segments[-1].end)]


def test_outline_boundaries_sit_mid_pause_and_snap_to_a_near_scene_cut() -> None:
    plain = outline(SEGMENTS, duration=DURATION, scene_cuts=[], language="en")
    # One cut 1.5 s after the first change (taken), one 2.5 s before the second (too far).
    cuts = [5.0, CHANGES[0] + 1.5, CHANGES[1] - 2.5]
    snapped = outline(SEGMENTS, duration=DURATION, scene_cuts=cuts, language="en")

    assert [section.start for section in plain[1:]] == pytest.approx(CHANGES)
    assert [section.start for section in snapped[1:]] == pytest.approx([CHANGES[0] + 1.5, CHANGES[1]])
    assert_contiguous(snapped, DURATION)


def test_outline_merges_sections_shorter_than_min_section() -> None:
    sections = outline(SEGMENTS, duration=DURATION, scene_cuts=[], min_section=50.0, language="en")

    assert_contiguous(sections, DURATION)
    assert len(sections) == 2  # the 48 s coffee part joined the volcano part
    assert all(section.end - section.start >= 50.0 for section in sections)
    short_media = outline(SEGMENTS[:3], duration=8.0, scene_cuts=[], language="en")
    assert [(s.start, s.end) for s in short_media] == [(0.0, 8.0)]


def test_outline_covers_the_media_beyond_the_speech() -> None:
    late = [Segment(s.start + 20, s.end + 20, s.text) for s in SEGMENTS]

    sections = outline(late, duration=200.0, scene_cuts=[], language="en")

    assert_contiguous(sections, 200.0)
    assert [s.start for s in sections[1:]] == pytest.approx([change + 20 for change in CHANGES])


def test_outline_of_no_speech() -> None:
    assert outline([], duration=30.0, scene_cuts=[3.0], language=None) == [Section("Full video", 0.0, 30.0)]
    assert outline([Segment(0, 2, " ")], duration=30.0, scene_cuts=[], language="en") == [
        Section("Full video", 0.0, 30.0)
    ]
    assert outline([], duration=0.0, scene_cuts=[], language=None) == []
    assert outline(SEGMENTS, duration=0.0, scene_cuts=[], language="en") == []


# --- keyphrases ----------------------------------------------------------------------------------


def test_keyphrases_prefer_a_repeated_phrase_over_its_parts() -> None:
    phrases = keyphrases(" ".join(CARS), language="en", top=5)

    assert phrases[0] in {"electric car", "electric cars"}
    assert not {"car", "cars"} & set(phrases)
    assert keyphrases(" ".join(CARS), language="en", top=0) == []
    assert keyphrases("", language="en", top=5) == []


def test_keyphrases_keep_the_mid_sentence_spelling() -> None:
    text = "Lava glows. Lava cools into rock. Lava covers the road. Hot lava moves. Iceland has lava."

    phrases = keyphrases(text, language="en", top=10)

    assert phrases[0] == "lava"
    assert "Iceland" in phrases


GERMAN = [
    "Heute sprechen wir über Kaffee und die richtige Zubereitung zu Hause.",
    "Frische Bohnen sind das Wichtigste für einen guten Kaffee.",
    "Die Bohnen werden erst kurz vor dem Brühen gemahlen, sonst verliert der Kaffee sein Aroma.",
    "Der Mahlgrad bestimmt, wie schnell das Wasser durch das Kaffeepulver läuft.",
    "Jetzt reisen wir zu einem Vulkan auf Island.",
    "Ein Vulkan entsteht, wenn Magma aus dem Erdmantel durch die Kruste aufsteigt.",
    "Bei einem Ausbruch fließt die Lava den Hang hinunter.",
    "Vulkane auf Island sind bei Touristen sehr beliebt, weil man die Lava aus der Nähe sieht.",
]
# Written independently of the module's lists, so a list that lost its German words fails here.
FUNCTION_WORDS = set(
    "der die das den dem ein einem einen und wir über zu bei auf aus sind sehr weil man wenn wie "
    "the and of a to in is on for with".split()
)


@pytest.mark.parametrize("language", ["de", "de-DE", None])
def test_german_keyphrases_are_german_content_words(language: str | None) -> None:
    phrases = keyphrases(" ".join(GERMAN), language=language, top=6)

    assert {"Kaffee", "Vulkan", "Lava"} <= set(phrases)
    assert not words_of(phrases) & FUNCTION_WORDS, phrases


def test_german_summary_and_outline() -> None:
    segments = timed(GERMAN)

    summary = summarize(segments, language="de")
    sections = outline(segments, duration=40.0, scene_cuts=[], language="de")

    assert {"Kaffee", "Vulkan"} <= set(summary.tags)
    assert " und " in summary.title
    assert not words_of(summary.tags) & FUNCTION_WORDS
    assert_contiguous(sections, 40.0)


@pytest.mark.parametrize(
    "text",
    [
        "今日はいい天気ですね。コーヒーが好きです。",
        "Le café est prêt. L'eau doit être chaude, pas bouillante.",
        "El volcán entró en erupción anoche y la lava llegó al pueblo.",
        "123 456 789",
        "🙂 🙂 🙂",
        "- - -",
        "a",
    ],
)
def test_any_language_or_noise_does_not_crash(text: str) -> None:
    segments = [Segment(0.0, 2.0, text), Segment(2.5, 4.0, text)]

    assert isinstance(keyphrases(text, language=None, top=5), list)
    assert isinstance(summarize(segments, language=None), Summary)
    assert_contiguous(outline(segments, duration=4.0, scene_cuts=[1.0], language=None), 4.0)
    assert isinstance(remove_repetitions(segments), list)


# --- repetition ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("thank you thank you thank you thank you", "thank you"),
        ("Thank you, thank you, thank you.", "Thank you."),
        ("That was very very good.", "That was very very good."),
        ("we we we need more coffee", "we need more coffee"),
        ("no no no stop no no no stop no no no stop", "no stop"),
        (
            " ".join(["please subscribe to the channel for more videos"] * 3),
            "please subscribe to the channel for more videos",
        ),
        ("It is what it is.", "It is what it is."),
    ],
)
def test_a_phrase_looping_within_a_segment_is_said_once(text: str, expected: str) -> None:
    assert remove_repetitions([Segment(1.0, 4.0, text)]) == [Segment(1.0, 4.0, expected)]


def test_a_segment_looping_three_times_keeps_the_first_with_its_timing() -> None:
    segments = [
        Segment(0.0, 2.0, "Welcome back."),
        Segment(2.0, 4.0, "Thanks for watching."),
        Segment(4.0, 6.0, "thanks for watching"),
        Segment(6.0, 8.0, "Thanks for watching!"),
        Segment(8.0, 9.0, ""),
        Segment(9.0, 11.0, "See you next time."),
    ]

    assert remove_repetitions(segments) == [
        Segment(0.0, 2.0, "Welcome back."),
        Segment(2.0, 4.0, "Thanks for watching."),
        Segment(9.0, 11.0, "See you next time."),
    ]


def test_normal_speech_passes_unchanged() -> None:
    twice = [Segment(0.0, 1.0, "Yes."), Segment(1.0, 2.0, "Yes."), Segment(2.0, 3.0, "Go on.")]

    assert remove_repetitions(twice) == twice
    assert remove_repetitions(SEGMENTS) == SEGMENTS
    assert remove_repetitions([]) == []
    assert remove_repetitions([Segment(0, 1, "  ")]) == []
