"""Subtitle cues from word timings, by the Netflix timed-text style guide (pure).

Sources of the rules (each constant below names its own):
- Netflix "Timed Text Style Guide: General Requirements": 5/6 s to 7 s a cue, 2 frames between cues;
- Netflix "English (USA) Timed Text Style Guide": 42 characters a line, 2 lines, reading speed up
  to 20 characters a second (17 for children's programmes, our target where the speech allows),
  line treatment (break after punctuation, before conjunctions and prepositions, never after an
  article; text on one line unless it does not fit; a bottom-heavy pyramid);
- Netflix "Subtitle Timing Guidelines": in-time on the first word, out-time up to half a second
  (12 frames) after the speech, gaps under 12 frames closed to 2 frames.

How the rules meet (the checker in tests/support/timed_text_rules.py enforces the same):
- A cue starts on its first word and ends at most ``MAX_TAIL`` after its last word, except that a
  cue whose speech is shorter than ``MIN_DURATION`` is held to the minimum: the minimum wins only
  inside the silence before the next word (2 frames clear of it) and before the media's end, so a
  cue can be short only when the next cue or the end of the media leaves no room.
- Reading speed: a cue stays up until ``TARGET_CPS`` is met, as far as the tail, the next cue and
  7 s allow. Speech faster than ``MAX_CPS`` cannot be fixed by splitting (the pieces keep the
  speech's pace) nor by holding text past the next words, so such a cue is as long as the rules
  allow and no longer.
- Grouping is a shortest path over the word boundaries, with costs in strict tiers: a cue that
  cannot be shown at all, then a break after an article (the style guide's "never": an article
  can always move to the next line or cue), then a cue under the minimum duration, then running
  on past a sentence end (two short sentences may share a cue to reach the minimum), then
  reading speed, then line and break quality. Lines that do not fit and long pauses inside a
  cue are never allowed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

MIN_DURATION: Final = 5 / 6  # Netflix General Requirements: minimum 5/6 s (20 frames at 24 fps)
MAX_DURATION: Final = 7.0  # Netflix General Requirements: maximum 7 s
GAP_FRAMES: Final = 2  # Netflix General Requirements: at least 2 frames between cues
CHAIN_FRAMES: Final = 12  # Netflix Timing Guidelines: gaps under 12 frames are closed to 2 frames
TARGET_CPS: Final = 17.0  # Netflix English guide, children's reading speed: the comfortable target
MAX_CPS: Final = 20.0  # Netflix English guide, adult reading speed: the limit
MAX_TAIL: Final = 0.5  # Netflix Timing Guidelines: out-time at most 12 frames (0.5 s) after speech
PAUSE: Final = 1.0  # seconds of silence between words that always start a new cue

SENTENCE_END: Final = (".", "?", "!", "…")
BREAK_AFTER: Final = (*SENTENCE_END, ",", ";", ":", "—", "\u2013")  # Netflix line treatment: break after
CLOSERS: Final = "\"')]»\u201d\u2019"  # closing quotes and brackets that may follow the punctuation
# Netflix line treatment: break before conjunctions and prepositions (a small English list).
CONJUNCTIONS_AND_PREPOSITIONS: Final = frozenset(
    "and but or nor so yet because although though while when where whereas if unless until since "
    "as than that which who whom whose whether to of in on at by for with from into onto over under "
    "about above below after before between through during without within against among across "
    "along around behind beyond like near toward towards upon via".split()
)
# Netflix line treatment: never separate an article (or a determiner) from its noun.
ARTICLES_AND_DETERMINERS: Final = frozenset(
    "a an the this these those my your his her its our their some any no every each".split()
)

# Costs of the grouping and the layouts, in tiers (see the module docstring).
_UNSHOWABLE: Final = 1e7  # a cue shorter than a frame
_AFTER_ARTICLE: Final = 1e6  # a line or cue break between an article and its noun ("never")
_TOO_SHORT: Final = 1e5  # a cue under the minimum duration (the next cue leaves no room)
_RUN_ON: Final = 1e4  # a sentence ends inside the cue
_OVER_MAX_CPS: Final = 100.0  # plus 10 a cps over MAX_CPS, capped so the tiers above stay above
_OVER_TARGET_CPS: Final = 3.0  # a cps over TARGET_CPS (up to MAX_CPS)
_PER_CUE: Final = 10.0  # a cue change interrupts reading more than a line break does
_BREAK_BEFORE_CONJUNCTION: Final = 4.0
_BREAK_ELSEWHERE: Final = 8.0  # a break after punctuation costs nothing
_IMBALANCE: Final = 0.25  # a character of difference between two adjacent lines
_TOP_HEAVY: Final = 0.25  # and again when the upper line is the longer (Netflix's pyramid)


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    text: str


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    lines: tuple[str, ...]


def _trimmed(text: str) -> str:
    return text.rstrip(CLOSERS)


def _ends_sentence(text: str) -> bool:
    return _trimmed(text).endswith(SENTENCE_END)


def _bare(text: str) -> str:
    return text.strip("".join(BREAK_AFTER) + CLOSERS + "\"'([\u00ab\u201c\u2018").lower()


def _break_cost(before: str, after: str) -> float:
    """How bad a line (or cue) break between these two words is: Netflix's line treatment."""
    if _trimmed(before).endswith(BREAK_AFTER):
        return 0.0
    if _bare(before) in ARTICLES_AND_DETERMINERS:
        return _AFTER_ARTICLE
    return _BREAK_BEFORE_CONJUNCTION if _bare(after) in CONJUNCTIONS_AND_PREPOSITIONS else _BREAK_ELSEWHERE


def _shape(top: int, bottom: int) -> float:
    return _IMBALANCE * abs(top - bottom) + _TOP_HEAVY * max(top - bottom, 0)


def _split(texts: Sequence[str], count: int, max_line_length: int) -> tuple[float, tuple[str, ...]] | None:
    """The cheapest layout of ``texts`` in exactly ``count`` lines (cost, lines), or None."""
    if count == 1:
        line = " ".join(texts)
        return (0.0, (line,)) if len(line) <= max_line_length else None
    best: tuple[float, tuple[str, ...]] | None = None
    for cut in range(1, len(texts) - count + 2):
        first = " ".join(texts[:cut])
        if len(first) > max_line_length:
            break
        rest = _split(texts[cut:], count - 1, max_line_length)
        if rest is None:
            continue
        cost = rest[0] + _break_cost(texts[cut - 1], texts[cut]) + _shape(len(first), len(rest[1][0]))
        if best is None or cost < best[0]:
            best = (cost, (first, *rest[1]))
    return best


def _layout(
    texts: Sequence[str], max_line_length: int, max_lines: int
) -> tuple[float, tuple[str, ...]] | None:
    """The best layout in the fewest lines: Netflix keeps text on one line unless it does not fit."""
    for count in range(1, min(max_lines, len(texts)) + 1):
        found = _split(texts, count, max_line_length)
        if found is not None:
            return found
    return None


def line_break(text_words: Sequence[str], max_line_length: int, max_lines: int) -> tuple[str, ...] | None:
    """``text_words`` set in as few lines as fit (at most ``max_lines`` of ``max_line_length``),
    broken where Netflix's line treatment prefers; None when they do not fit (a word longer than
    a line never fits: ``build_cues`` hyphenates those first)."""
    found = _layout([w for w in text_words if w], max_line_length, max_lines)
    return None if found is None else found[1]


def _pieces(word: Word, max_line_length: int) -> list[Word]:
    """A word longer than a line, cut into hyphenated line-long pieces sharing its time by length."""
    text = " ".join(word.text.split())
    chunks = []
    while len(text) > max_line_length:
        chunks.append(text[: max_line_length - 1] + "-")
        text = text[max_line_length - 1 :]
    chunks.append(text)
    total = sum(len(c) for c in chunks)
    duration = max(word.end - word.start, 0.0)
    pieces, done = [], 0
    for chunk in chunks:
        start = word.start + duration * done / total
        done += len(chunk)
        pieces.append(Word(round(start, 3), round(word.start + duration * done / total, 3), chunk))
    return pieces


def _cue_cost(
    tokens: Sequence[Word],
    first: int,
    after: int,
    layout: tuple[float, tuple[str, ...]],
    end: float,
    frame_rate: float,
) -> float:
    chars = sum(len(line) for line in layout[1])
    duration = end - tokens[first].start
    cost = _PER_CUE + layout[0]
    if after < len(tokens):
        cost += _break_cost(tokens[after - 1].text, tokens[after].text)
    if duration < 1 / frame_rate:
        return cost + _UNSHOWABLE
    if duration < MIN_DURATION:
        cost += _TOO_SHORT * (1 + MIN_DURATION - duration)
    cost += _RUN_ON * sum(_ends_sentence(t.text) for t in tokens[first : after - 1])
    cps = chars / duration
    if cps > MAX_CPS:
        cost += _OVER_MAX_CPS + min(10 * (cps - MAX_CPS), 900.0)
    return cost + _OVER_TARGET_CPS * max(min(cps, MAX_CPS) - TARGET_CPS, 0.0)


def _cue_end(
    tokens: Sequence[Word],
    first: int,
    after: int,
    chars: int,
    frame_rate: float,
    media_duration: float | None,
) -> float:
    """When the cue of ``tokens[first:after]`` ends: long enough to read (TARGET_CPS) and to be
    seen (MIN_DURATION), within the tail, 7 s, 2 frames before the next word and the media's end."""
    start, last_end = tokens[first].start, tokens[after - 1].end
    following = tokens[after].start if after < len(tokens) else math.inf
    limit = following - GAP_FRAMES / frame_rate
    if media_duration is not None:
        limit = min(limit, media_duration)
    latest = min(limit, start + MAX_DURATION, max(last_end + MAX_TAIL, start + MIN_DURATION))
    end = min(max(last_end, start + MIN_DURATION, start + chars / TARGET_CPS), latest)
    if following - end < CHAIN_FRAMES / frame_rate:
        end = latest
    return end


def build_cues(
    words: Sequence[Word],
    *,
    max_line_length: int = 42,
    max_lines: int = 2,
    frame_rate: float = 24.0,
    media_duration: float | None = None,
) -> list[Cue]:
    """Cues for ``words``, keeping every rule of the module docstring that the speech allows.

    Times are whole milliseconds (what WebVTT and SRT carry), with the gaps rounded up. Words piled
    at one instant, too many for one cue, would leave a cue no time at all: those cues get one
    frame each and the following ones move later, so the cues never overlap.
    """
    if max_line_length < 2 or max_lines < 1:
        raise ValueError("max_line_length must be at least 2 and max_lines at least 1")
    tokens = [
        piece
        for word in sorted(words, key=lambda w: w.start)
        if word.text.strip()
        for piece in _pieces(Word(round(word.start, 3), round(word.end, 3), word.text), max_line_length)
    ]
    count = len(tokens)
    best = [0.0] * (count + 1)
    plan: list[tuple[int, tuple[str, ...], float]] = [(count, (), 0.0)] * count
    for first in range(count - 1, -1, -1):
        best[first] = math.inf
        for after in range(first + 1, count + 1):
            if after - first > 1 and (
                tokens[after - 1].start - tokens[after - 2].end > PAUSE
                or tokens[after - 1].end - tokens[first].start > MAX_DURATION
            ):
                break
            layout = _layout([t.text for t in tokens[first:after]], max_line_length, max_lines)
            if layout is None:
                break
            chars = sum(len(line) for line in layout[1])
            end = _cue_end(tokens, first, after, chars, frame_rate, media_duration)
            cost = _cue_cost(tokens, first, after, layout, end, frame_rate) + best[after]
            if cost < best[first]:
                best[first], plan[first] = cost, (after, layout[1], end)
    gap_ms, frame_ms = math.ceil(GAP_FRAMES * 1000 / frame_rate), math.ceil(1000 / frame_rate)
    cues: list[Cue] = []
    previous_end_ms, first = -gap_ms, 0
    while first < count:
        after, lines, end = plan[first]
        start_ms = max(round(tokens[first].start * 1000), previous_end_ms + gap_ms)
        previous_end_ms = max(math.floor(end * 1000 + 1e-6), start_ms + frame_ms)
        cues.append(Cue(start_ms / 1000, previous_end_ms / 1000, lines))
        first = after
    return cues
