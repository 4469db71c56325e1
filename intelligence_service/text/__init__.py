"""Pure text analytics over a Whisper transcript: hallucination guard, keyphrases, summary, outline.

Everything here is a deterministic function of its input, so the RPC layer can be tested without a
model and the same transcript always yields the same tags, title and chapters.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Segment:
    """One transcript segment as Whisper produced it; times are seconds from the media start."""

    start: float
    end: float
    text: str


def joined_text(segments: Iterable[Segment]) -> str:
    """The transcript as one text, since sentences often run across segment boundaries."""
    return " ".join(text for segment in segments if (text := segment.text.strip()))
