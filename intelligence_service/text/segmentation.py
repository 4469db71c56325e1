"""Chapters for a video from its transcript: TextTiling (Hearst, 1997) over Whisper segments.

Words repeat within a topic and change when the topic does. Every pause between two segments is a
candidate boundary, scored by the cosine between the word counts just before it and just after it
(about `_BLOCK_WORDS` content words each side, Hearst's k*w after stopword removal). Words count as
the same when their stems (lower case, plural stripped) share the first `_COHESION_PREFIX` letters,
so volcano/volcanic and grind/grinder cohere; the keys are never shown, so they need not be words.
Scores are smoothed over three gaps. A gap's depth is how far its score sinks below the nearest
peaks on both sides. A valley (no higher than its neighbours) becomes a boundary when its depth
exceeds mean - sd/2 of all valley depths (Hearst's liberal cut-off), but never below `_MIN_DEPTH`,
which keeps a single-topic talk from being cut at noise. Smoothing widens valleys, so each boundary
then settles onto the neighbouring pause where the segments on both sides best match their own
side. A boundary thus always sits mid-pause. A scene cut from the video within `SNAP_SECONDS`
moves it onto the cut, because a chapter that starts on a cut looks intended.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from intelligence_service.text import Segment, joined_text
from intelligence_service.text.keyphrases import (
    content_keys,
    cosine,
    language_code,
    phrase_title,
    rank_phrases,
)

SNAP_SECONDS = 2.0
EMPTY_TITLE = "Full video"
_BLOCK_WORDS = 60
_COHESION_PREFIX = 5
_MIN_DEPTH = 0.2
_SETTLE_STEPS = 2
_TITLE_PHRASES = 2


@dataclass(frozen=True)
class Section:
    """One chapter; sections of an outline are contiguous and cover the whole media."""

    title: str
    start: float
    end: float


@dataclass(frozen=True)
class _Cut:
    time: float
    depth: float


def outline(
    segments: Sequence[Segment],
    *,
    duration: float,
    scene_cuts: Sequence[float],
    min_section: float = 10.0,
    language: str | None,
) -> list[Section]:
    """Sections from 0 to `duration`, each at least `min_section` long (unless the media is
    shorter), titled by their own keyphrases. With no speech there is nothing to chapter by, so
    the outline is one section, "Full video", or nothing when the media has no duration."""
    if duration <= 0:
        return []
    code = language_code(joined_text(segments), language)
    spoken = [segment for segment in segments if segment.text.strip()]
    snapped = [_Cut(_snap(cut.time, scene_cuts), cut.depth) for cut in _topic_cuts(spoken, code)]
    inside = _distinct([cut for cut in snapped if 0 < cut.time < duration])
    edges = [0.0, *_merge_short(inside, 0.0, duration, min_section), duration]
    sections = []
    # The last section also takes any speech Whisper timed past the media's end.
    for number, (start, end) in enumerate(zip(edges[:-1], [*edges[1:-1], math.inf], strict=True), start=1):
        text = joined_text(segment for segment in spoken if start <= _middle(segment) < end)
        phrases = rank_phrases(text, code=code, top=_TITLE_PHRASES)
        fallback = EMPTY_TITLE if len(edges) == 2 else f"Part {number}"
        sections.append(Section(phrase_title(phrases, code=code) or fallback, start, min(end, duration)))
    return sections


def topic_spans(
    segments: Sequence[Segment], *, language: str | None, min_span: float = 10.0
) -> list[list[Segment]]:
    """The transcript cut at its topic shifts into runs of at least `min_span` seconds, for callers
    that want something per topic (the summary's tags)."""
    spoken = [segment for segment in segments if segment.text.strip()]
    if not spoken:
        return []
    code = language_code(joined_text(spoken), language)
    start, end = spoken[0].start, spoken[-1].end
    edges = [start, *_merge_short(_topic_cuts(spoken, code), start, end, min_span), math.inf]
    return [
        [segment for segment in spoken if low <= _middle(segment) < high]
        for low, high in itertools.pairwise(edges)
    ]


def _topic_cuts(segments: Sequence[Segment], code: str) -> list[_Cut]:
    """The TextTiling boundaries, each at the middle of the pause it falls in."""
    bags = [Counter(key[:_COHESION_PREFIX] for key in content_keys(s.text, code)) for s in segments]
    raw = [cosine(_block(bags, gap, -1), _block(bags, gap + 1, 1)) for gap in range(len(bags) - 1)]
    scores = [statistics.fmean(raw[max(gap - 1, 0) : gap + 2]) for gap in range(len(raw))]
    valleys = {
        gap: _depth(scores, gap)
        for gap, score in enumerate(scores)
        if score <= min(scores[max(gap - 1, 0) : gap + 2])
    }
    if not valleys:
        return []
    spread = statistics.pstdev(valleys.values())
    cutoff = max(statistics.fmean(valleys.values()) - spread / 2, _MIN_DEPTH)
    return [
        _Cut((segments[gap].end + segments[gap + 1].start) / 2, depth)
        for gap, depth in ((_settle(bags, gap), depth) for gap, depth in valleys.items() if depth > cutoff)
    ]


def _settle(bags: Sequence[Counter[str]], gap: int) -> int:
    """The gap near `gap` where the segments on each side share more words with their own side.
    Smoothing widens a valley, so its lowest point can sit a segment off the real shift; walking
    the segment next to the boundary over to the side it resembles puts the boundary back."""
    for _ in range(_SETTLE_STEPS):
        if gap > 0 and _leans(bags[gap], toward=_block(bags, gap + 1, 1), away=_block(bags, gap - 1, -1)):
            gap -= 1
        elif gap + 2 < len(bags) and _leans(
            bags[gap + 1], toward=_block(bags, gap, -1), away=_block(bags, gap + 2, 1)
        ):
            gap += 1
        else:
            break
    return gap


def _leans(bag: Counter[str], *, toward: Counter[str], away: Counter[str]) -> bool:
    return cosine(bag, toward) > cosine(bag, away)


def _block(bags: Sequence[Counter[str]], first: int, step: int) -> Counter[str]:
    """The words of the segments from `first` walking by `step` until `_BLOCK_WORDS` are in."""
    block: Counter[str] = Counter()
    index = first
    while 0 <= index < len(bags) and block.total() < _BLOCK_WORDS:
        block += bags[index]
        index += step
    return block


def _depth(scores: Sequence[float], gap: int) -> float:
    """How far the score at `gap` lies below the peaks reached by climbing left and right."""
    left = gap
    while left > 0 and scores[left - 1] >= scores[left]:
        left -= 1
    right = gap
    while right < len(scores) - 1 and scores[right + 1] >= scores[right]:
        right += 1
    return (scores[left] - scores[gap]) + (scores[right] - scores[gap])


def _snap(time: float, scene_cuts: Sequence[float]) -> float:
    nearest = min(scene_cuts, key=lambda cut: abs(cut - time), default=None)
    return nearest if nearest is not None and abs(nearest - time) <= SNAP_SECONDS else time


def _distinct(cuts: Sequence[_Cut]) -> list[_Cut]:
    """One cut per time: two boundaries snapped onto the same scene cut keep the deeper depth."""
    deepest: dict[float, _Cut] = {}
    for cut in cuts:
        if cut.time not in deepest or cut.depth > deepest[cut.time].depth:
            deepest[cut.time] = cut
    return list(deepest.values())


def _merge_short(cuts: Sequence[_Cut], start: float, end: float, shortest: float) -> list[float]:
    """The cut times left once every section under `shortest` seconds has joined a neighbour. The
    shortest section goes first, and it loses its shallower boundary, the weaker topic shift."""
    kept = sorted(cuts, key=lambda cut: cut.time)
    while kept:
        edges = [start, *(cut.time for cut in kept), end]
        lengths = [high - low for low, high in itertools.pairwise(edges)]
        index = min(range(len(lengths)), key=lengths.__getitem__)
        if lengths[index] >= shortest:
            break
        if index == 0:
            del kept[0]
        elif index == len(kept):
            del kept[-1]
        else:
            del kept[index - 1 if kept[index - 1].depth <= kept[index].depth else index]
    return [cut.time for cut in kept]


def _middle(segment: Segment) -> float:
    return (segment.start + segment.end) / 2
