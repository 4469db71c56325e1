"""Whisper's hallucination loop: on silence, music or noise the decoder can get stuck repeating a
phrase ("thank you thank you thank you ...") within a segment or as identical segments in a row.

A phrase of up to `MAX_PHRASE_WORDS` words said `MIN_REPEATS` or more times in a row is kept once.
A segment whose text repeats in the next segments keeps only the first occurrence. People do
double a word for emphasis ("very very good"), so two in a row is speech and stays. Words match
case- and punctuation-blind. The kept segment keeps its own timing: the repeats' time had no real
speech, and left as a pause it is where a chapter boundary may go.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from intelligence_service.text import Segment

MAX_PHRASE_WORDS = 8
MIN_REPEATS = 3
_MAX_LOOPING_SEGMENTS = 4
_NOT_WORD = re.compile(r"[\W_]+")
_PUNCTUATION = ".,;:!?\u2026"


def remove_repetitions(segments: Sequence[Segment]) -> list[Segment]:
    """`segments` with looping phrases and looping segments collapsed; empty segments dropped."""
    cleaned = [replace(segment, text=_collapse_words(segment.text)) for segment in segments]
    spoken = [segment for segment in cleaned if segment.text]
    keys = [_key(segment.text) for segment in spoken]
    return [spoken[index] for index in _kept(keys, _MAX_LOOPING_SEGMENTS)]


def _collapse_words(text: str) -> str:
    """`text` with each looping phrase said once. Repeats again until nothing changes, since
    collapsing "no no no" inside "no no no stop no no no stop ..." reveals the outer loop."""
    tokens = text.split()
    while True:
        kept = _kept([_key(token) for token in tokens], MAX_PHRASE_WORDS)
        if len(kept) == len(tokens):
            return " ".join(tokens)
        following = [*kept[1:], len(tokens)]
        tokens = [_with_ending(tokens, index, after) for index, after in zip(kept, following, strict=True)]


def _with_ending(tokens: Sequence[str], index: int, following: int) -> str:
    """The token at `index`, taking the punctuation of the last token dropped before the next
    kept one at `following`, so "Thank you, thank you, thank you." ends as "Thank you."."""
    if following == index + 1:
        return tokens[index]
    dropped = tokens[following - 1]
    return tokens[index].rstrip(_PUNCTUATION) + dropped[len(dropped.rstrip(_PUNCTUATION)) :]


def _kept(keys: Sequence[str], longest: int) -> list[int]:
    """Indices to keep: at each position the shortest unit (1..`longest` items) that repeats at
    least `MIN_REPEATS` times in a row is kept once and its repeats skipped."""
    kept: list[int] = []
    index = 0
    while index < len(keys):
        for size in range(1, longest + 1):
            unit = keys[index : index + size]
            repeats = 1
            while keys[index + repeats * size : index + (repeats + 1) * size] == unit:
                repeats += 1
            if repeats >= MIN_REPEATS:
                kept.extend(range(index, index + size))
                index += repeats * size
                break
        else:
            kept.append(index)
            index += 1
    return kept


def _key(text: str) -> str:
    """What counts as the same word or segment: case, punctuation and spacing ignored."""
    return _NOT_WORD.sub(" ", text.casefold()).strip() or text
