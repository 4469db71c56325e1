"""Validation of ``speech``, ``nsfw``, ``summary`` and ``outline`` options (pure).

The reference documents no options for these kinds; the ones here are extensions whose defaults
are its behaviour (detected language, a transcript with word timings, voice activity detection).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from taskkit.options import Echo, ValueParser, boolean, choice, fail, language, parse_fields, seconds

SPEECH_TASKS: Final = ("transcribe", "translate")
MAX_PROMPT_CHARS: Final = 1000  # Whisper reads at most 224 prompt tokens; checked in tokens by the model
MIN_SECTION_RANGE: Final = (1.0, 3600.0)


def _prompt(field: str, value: Any) -> str:
    if isinstance(value, str) and value.strip() and len(value) <= MAX_PROMPT_CHARS:
        return value.strip()
    raise fail(field, f"a non-empty text of at most {MAX_PROMPT_CHARS} characters", value)


_SPEECH_PARSERS: Final[dict[str, ValueParser]] = {
    "language": language,
    "task": choice(SPEECH_TASKS),
    "word_timestamps": boolean,
    "vad": boolean,
    "prompt": _prompt,
}


@dataclass(frozen=True)
class SpeechOptions(Echo):
    language: str | None = None  # None: detected
    task: str = "transcribe"
    word_timestamps: bool = True
    vad: bool = True
    prompt: str | None = None


@dataclass(frozen=True)
class NoOptions(Echo):
    """``nsfw`` and ``summary`` take none."""


@dataclass(frozen=True)
class OutlineOptions(Echo):
    min_section: float = 10.0


def parse_speech_options(raw: Mapping[str, Any]) -> SpeechOptions:
    return SpeechOptions(**parse_fields("speech", raw, _SPEECH_PARSERS))


def parse_nsfw_options(raw: Mapping[str, Any]) -> NoOptions:
    return NoOptions(**parse_fields("nsfw", raw, {}))


def parse_summary_options(raw: Mapping[str, Any]) -> NoOptions:
    return NoOptions(**parse_fields("summary", raw, {}))


def parse_outline_options(raw: Mapping[str, Any]) -> OutlineOptions:
    return OutlineOptions(**parse_fields("outline", raw, {"min_section": seconds(*MIN_SECTION_RANGE)}))
