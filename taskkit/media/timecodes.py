"""Media times as the clocks timed-text formats write: ``HH:MM:SS.mmm`` (WebVTT cues, storyboards)
and ``HH:MM:SS,mmm`` (SRT). One writer, so every track a task makes rounds a time the same way."""

from __future__ import annotations


def cue_time(seconds: float, separator: str = ".") -> str:
    """``seconds`` rounded to the millisecond (never below 0); hours grow past 99 if they must."""
    millis = max(round(seconds * 1000), 0)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"
