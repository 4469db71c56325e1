"""Title, description and tags for a video from its transcript, extractive and model-free.

Tags are ranked per topic (the spans `segmentation.topic_spans` finds) and merged round-robin.
Ranked over the whole transcript, the longest or densest topic would take every slot, and a talk
about coffee, volcanoes and cars would be tagged as a coffee talk. The title names the top phrase
of each topic. The description is the few most central sentences, by TextRank over sentences
(Mihalcea & Tarau, 2004) with the cosine of their word counts as edge weights, in spoken order.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from intelligence_service.text import Segment, joined_text
from intelligence_service.text.keyphrases import (
    content_keys,
    language_code,
    overlaps,
    pagerank,
    phrase_title,
    rank_phrases,
    split_sentences,
    truncate,
)
from intelligence_service.text.segmentation import topic_spans

MAX_TAGS = 10
DESCRIPTION_LIMIT = 400
_DESCRIPTION_SENTENCES = 3
_MIN_SENTENCE_WORDS = 4
_SAME_SENTENCE = 0.8  # cosine above which a sentence only restates one already chosen
_TITLE_TOPICS = 3


@dataclass(frozen=True)
class Summary:
    """What the summary task returns; all empty when nothing was said."""

    title: str
    description: str
    tags: list[str]


def summarize(segments: Sequence[Segment], *, language: str | None) -> Summary:
    """The summary of a transcript. With no speech it is `Summary("", "", [])`, and the caller
    describes the media from what it knows about it instead. A transcript without a single content
    word ("...", "Thank you.", what Whisper writes over music) counts as no speech."""
    text = joined_text(segments)
    code = language_code(text, language)
    if not content_keys(text, code):
        return Summary("", "", [])
    spans = topic_spans(segments, language=language)
    tags = _round_robin([rank_phrases(joined_text(span), code=code, top=MAX_TAGS) for span in spans], code)
    title = phrase_title(tags[: max(2, min(len(spans), _TITLE_TOPICS))], code=code)
    return Summary(title, _description(text, segments, code), tags)


def _round_robin(rankings: Sequence[Sequence[str]], code: str) -> list[str]:
    """Each topic's best phrase, then each one's second best, and so on, skipping any phrase that
    repeats a tag already taken (same words, or one's words within the other's)."""
    tags: list[str] = []
    taken: list[list[str]] = []
    for rank in range(max(map(len, rankings), default=0)):
        for ranking in rankings:
            if rank >= len(ranking) or len(tags) == MAX_TAGS:
                continue
            keys = content_keys(ranking[rank], code)
            if not any(overlaps(keys, other) for other in taken):
                tags.append(ranking[rank])
                taken.append(keys)
    return tags


def _description(text: str, segments: Sequence[Segment], code: str) -> str:
    """Up to three central sentences, in spoken order, within `DESCRIPTION_LIMIT` characters.
    Whisper sometimes leaves out punctuation; then the segments stand in for sentences."""
    sentences = split_sentences(text)
    pieces = [clean for segment in segments if (clean := segment.text.strip())]
    if len(sentences) == 1 and len(pieces) > 1:
        sentences = pieces
    bags = [Counter(content_keys(sentence, code)) for sentence in sentences]
    # One-liners ("Thank you.") share few words and say little; skip them when anything else is there.
    candidates = [
        index for index, sentence in enumerate(sentences) if len(sentence.split()) >= _MIN_SENTENCE_WORDS
    ]
    graph = _similarities({index: bags[index] for index in candidates or range(len(sentences))})
    score = pagerank(graph)
    ranked = sorted(graph, key=lambda index: -score[index])
    chosen: list[int] = []
    for index in ranked:
        fits = len(" ".join(sentences[i] for i in [*chosen, index])) <= DESCRIPTION_LIMIT
        repeats = any(graph[index].get(other, 0.0) > _SAME_SENTENCE for other in chosen)
        if fits and not repeats and len(chosen) < _DESCRIPTION_SENTENCES:
            chosen.append(index)
    if not chosen:
        return truncate(sentences[ranked[0]], DESCRIPTION_LIMIT)
    return " ".join(sentences[index] for index in sorted(chosen))


def _similarities(bags: Mapping[int, Counter[str]]) -> dict[int, dict[int, float]]:
    """The cosine between every two sentences that share a word, through an index of which
    sentences hold each word: an hour of speech has hundreds of sentences, and most pairs share
    nothing."""
    holders: defaultdict[str, list[tuple[int, int]]] = defaultdict(list)
    for index, bag in bags.items():
        for word, count in bag.items():
            holders[word].append((index, count))
    dots: dict[int, Counter[int]] = {index: Counter() for index in bags}
    for holding in holders.values():
        for (first, a), (second, b) in itertools.permutations(holding, 2):
            dots[first][second] += a * b
    norms = {index: math.sqrt(sum(count * count for count in bag.values())) for index, bag in bags.items()}
    return {
        index: {other: dot / (norms[index] * norms[other]) for other, dot in row.items()}
        for index, row in dots.items()
    }
