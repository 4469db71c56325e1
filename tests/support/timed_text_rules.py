"""The timed-text rules, checked independently of the cue builder, and parsers for the files.

``check_cues`` returns what is wrong (an empty list when nothing is). It restates the rules
tracks_service/cues.py documents, without its code: Netflix's General Requirements (5/6 s to 7 s,
2 frames apart), English guide (line length, line count, one line when it fits, no line or cue
ending on an article, 20 characters a second), Timing Guidelines (in on the first word, out at
most 0.5 s after the last), and this project's resolutions where they meet:
- the minimum duration may stretch a cue past the 0.5 s tail, never past the next cue (2 frames
  clear) or the media's end; a cue may be under the minimum only when one of those leaves no room;
- a cue may read faster than 17 (or 20) characters a second only when it lasts as long as those
  limits, the tail and 7 s allow;
- a sentence end or a pause over 1 s inside a cue is wrong, unless splitting there would leave a
  piece under the minimum duration.

Without ``words`` only what the cues show is checked: lines, durations, gaps, order, and reading
speed over 20 characters a second (allowed then only where the next cue, the media's end or 7 s
leaves no room). Line-break preferences (punctuation, conjunctions, balance) are choices, not
rules, and are tested on ``line_break`` itself.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass

import webvtt

from tracks_service.cues import Cue, Word

MIN_DURATION = 5 / 6
MAX_DURATION = 7.0
GAP_FRAMES = 2
MAX_CPS = 20.0
TARGET_CPS = 17.0
START_TOLERANCE = 0.1  # a cue starts within this of its first word
MAX_TAIL = 0.5
PAUSE = 1.0
EPS = 0.001  # cue times are written to the millisecond
ARTICLES = frozenset("a an the this these those my your our their its".split())
_SENTENCE_END = re.compile(r"[.?!…][\"')\]»\u201d\u2019]*$")
_PUNCTUATED = re.compile(r"[.?!…,;:—\u2013][\"')\]»\u201d\u2019]*$")
_SRT_TIMING = re.compile(r"^(\d{2,}):(\d{2}):(\d{2}),(\d{3}) --> (\d{2,}):(\d{2}):(\d{2}),(\d{3})$")


def _seconds(clock: str) -> float:
    parts = clock.replace(",", ".").split(":")
    return sum(float(part) * 60**power for power, part in enumerate(reversed(parts)))


def parse_webvtt(text: str) -> list[Cue]:
    """Cues of a WebVTT file read by webvtt-py, with the character references undone."""
    return [
        Cue(_seconds(c.start), _seconds(c.end), tuple(html.unescape(line) for line in c.text.splitlines()))
        for c in webvtt.from_string(text).captions
    ]


def parse_srt(text: str) -> list[Cue]:
    """Cues of a SubRip file, strictly: numbered from 1, ``HH:MM:SS,mmm`` timings, blank-line
    separated blocks; anything else raises ValueError."""
    cues = []
    blocks = [b for b in re.split(r"\n[ \t]*\n", text.lstrip("\ufeff").replace("\r\n", "\n").strip()) if b]
    for number, block in enumerate(blocks, 1):
        index, timing, *lines = block.split("\n")
        found = _SRT_TIMING.match(timing)
        if index != str(number) or found is None:
            raise ValueError(f"malformed SRT block {number}: {block!r}")
        values = [int(v) for v in found.groups()]
        start, end = (h * 3600 + m * 60 + s + ms / 1000 for h, m, s, ms in (values[:4], values[4:]))
        cues.append(Cue(start, end, tuple(lines)))
    return cues


def _bare(token: str) -> str:
    return token.strip("\"'()[]\u00ab\u00bb\u201c\u201d\u2018\u2019").lower()


def _is_article(token: str) -> bool:
    return not _PUNCTUATED.search(token) and _bare(token) in ARTICLES


def _fewest_lines(text: str, max_line_length: int) -> int:
    """Lines that greedy filling needs (the fewest any layout can have)."""
    lines, length = 1, -1
    for token in text.split():
        if length >= 0 and length + 1 + len(token) > max_line_length:
            lines, length = lines + 1, -1
        length += 1 + len(token)
    return lines


@dataclass(frozen=True)
class _Span:
    """The words a cue shows: indexes of the first and last, and whether it shows them whole."""

    first: int
    last: int
    starts_on_word: bool
    ends_on_word: bool


def _align(cues: Sequence[Cue], words: Sequence[Word]) -> list[_Span] | str:
    """Which words each cue shows, matching characters without spaces; a line-final hyphen that
    the words do not have is a word cut across lines. A string says where they differ."""
    owner: list[int] = []
    for index, word in enumerate(words):
        owner += [index] * len("".join(word.text.split()))
    stream = "".join("".join(w.text.split()) for w in words)
    position, spans = 0, []
    for number, cue in enumerate(cues):
        begin = position
        for line in cue.lines:
            body = "".join(line.split())
            cut = body.endswith("-") and not stream.startswith(body, position)
            body = body[:-1] if cut else body
            if not stream.startswith(body, position):
                return f"cue {number}: text {line!r} is not the words' {stream[position : position + 40]!r}"
            position += len(body)
        if position == begin:
            return f"cue {number}: shows no words"
        first, last = owner[begin], owner[position - 1]
        spans.append(
            _Span(
                first,
                last,
                begin == 0 or owner[begin - 1] != first,
                position == len(stream) or owner[position] != last,
            )
        )
    if position != len(stream):
        return f"the cues leave out the words from {stream[position : position + 40]!r}"
    return spans


def _line_problems(name: str, cue: Cue, max_line_length: int, max_lines: int) -> list[str]:
    problems = []
    if not cue.lines:
        problems.append(f"{name}: no text")
    if len(cue.lines) > max_lines:
        problems.append(f"{name}: {len(cue.lines)} lines, over {max_lines}")
    for line in cue.lines:
        if len(line) > max_line_length:
            problems.append(f"{name}: line {line!r} of {len(line)} characters, over {max_line_length}")
        if not line.strip() or line != line.strip():
            problems.append(f"{name}: blank or padded line {line!r}")
    fewest = _fewest_lines(" ".join(cue.lines), max_line_length)
    if cue.lines and len(cue.lines) > fewest:
        problems.append(f"{name}: {len(cue.lines)} lines where {fewest} fit")
    for upper, lower in zip(cue.lines, cue.lines[1:], strict=False):
        end, begin = upper.split()[-1:], lower.split()[:1]
        if end and begin and _is_article(end[0]) and len(f"{end[0]} {begin[0]}") <= max_line_length:
            problems.append(f"{name}: line break after the article {end[0]!r}")
    return problems


def _word_problems(
    name: str,
    cue: Cue,
    span: _Span,
    words: Sequence[Word],
    latest: float,
    following: Cue | None,
    *,
    max_line_length: int,
    gap: float,
) -> list[str]:
    """The rules about a cue and the speech it shows."""
    problems = []
    first, last = words[span.first], words[span.last]
    duration = cue.end - cue.start
    if span.starts_on_word and abs(cue.start - first.start) > START_TOLERANCE + EPS:
        problems.append(f"{name}: starts {cue.start - first.start:+.3f} s from its first word")
    if not span.starts_on_word and not first.start - START_TOLERANCE - EPS <= cue.start <= first.end + EPS:
        problems.append(f"{name}: starts outside the word it continues")
    if cue.end > max(last.end + MAX_TAIL, cue.start + MIN_DURATION) + EPS:
        problems.append(f"{name}: ends {cue.end - last.end:.3f} s after its last word, over {MAX_TAIL} s")
    if span.ends_on_word and cue.end < min(last.end, latest) - EPS:
        problems.append(f"{name}: ends {last.end - cue.end:.3f} s before its last word does")
    chars = sum(len(line) for line in cue.lines)
    if 0 < duration < chars / TARGET_CPS - EPS and cue.end < latest - EPS:
        problems.append(
            f"{name}: {chars / duration:.1f} characters/s, over {TARGET_CPS}, though it could stay "
            f"until {latest:.3f}"
        )
    for index in range(span.first, span.last):
        pause = words[index + 1].start - words[index].end
        if pause > PAUSE + EPS:
            problems.append(f"{name}: a {pause:.2f} s pause inside the cue")
        before = words[index + 1].start - gap - cue.start
        after = cue.end - words[index + 1].start
        if _SENTENCE_END.search(words[index].text) and min(before, after) >= MIN_DURATION - EPS:
            problems.append(f"{name}: runs on past the sentence end {words[index].text!r}")
    if following is not None and span.ends_on_word and span.last + 1 < len(words):
        token, following_word = cue.lines[-1].split()[-1], words[span.last + 1]
        if (
            _is_article(token)
            and following_word.start - last.end <= PAUSE
            and len(f"{token} {following_word.text.strip()}") <= max_line_length
        ):
            problems.append(f"{name}: the next cue takes the noun of its last word {token!r}")
    return problems


def check_cues(
    cues: Sequence[Cue],
    *,
    words: Sequence[Word] | None = None,
    max_line_length: int = 42,
    max_lines: int = 2,
    frame_rate: float = 24.0,
    media_duration: float | None = None,
) -> list[str]:
    """Every rule of the module docstring that ``cues`` break, one description each."""
    gap = GAP_FRAMES / frame_rate
    spoken = sorted((w for w in words or () if w.text.strip()), key=lambda w: w.start)
    spans = _align(cues, spoken) if words is not None else None
    problems = [spans] if isinstance(spans, str) else []
    for index, cue in enumerate(cues):
        name = f"cue {index} ({cue.start:.3f}-{cue.end:.3f} {' / '.join(cue.lines)!r})"
        following = cues[index + 1] if index + 1 < len(cues) else None
        duration = cue.end - cue.start
        problems += _line_problems(name, cue, max_line_length, max_lines)
        if cue.start < 0 or duration <= 0:
            problems.append(f"{name}: not a positive time span")
        if duration > MAX_DURATION + EPS:
            problems.append(f"{name}: lasts {duration:.3f} s, over {MAX_DURATION} s")
        if media_duration is not None and cue.end > media_duration + EPS:
            problems.append(f"{name}: ends after the media ({media_duration:.3f} s)")
        if following is not None and following.start < cue.start:
            problems.append(f"{name}: the next cue starts earlier")
        if following is not None and following.start - cue.end < gap - EPS:
            problems.append(f"{name}: {following.start - cue.end:.3f} s before the next cue, under 2 frames")
        # Where the cue could end at the latest: 2 frames before the next cue, the media's end.
        room = min(
            following.start - gap if following is not None else float("inf"),
            media_duration if media_duration is not None else float("inf"),
        )
        if duration < MIN_DURATION - EPS and cue.end < room - EPS:
            problems.append(f"{name}: lasts {duration:.3f} s, under 5/6 s, with room to stay")
        chars = sum(len(line) for line in cue.lines)
        pinned = cue.end >= room - EPS or duration >= MAX_DURATION - EPS
        too_fast = 0 < duration < chars / MAX_CPS - EPS
        if too_fast and not pinned and not isinstance(spans, list):
            problems.append(f"{name}: {chars / duration:.1f} characters/s, over {MAX_CPS}, with room to stay")
        if isinstance(spans, list):
            last = spoken[spans[index].last]
            latest = min(room, cue.start + MAX_DURATION, max(last.end + MAX_TAIL, cue.start + MIN_DURATION))
            problems += _word_problems(
                name, cue, spans[index], spoken, latest, following, max_line_length=max_line_length, gap=gap
            )
    return problems
