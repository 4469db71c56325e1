"""The languages speech recognition knows: the codes Whisper's tokenizer accepts (ISO 639-1, plus
``haw`` and ``yue``). A ``language`` hint outside them is a 400 at create, not a transcription that
fails in the worker; ``tests/unit/test_intelligence_units.py`` checks the list against the
installed faster-whisper.
"""

from __future__ import annotations

from typing import Final

SPEECH_LANGUAGES: Final = frozenset(
    (
        "af am ar as az ba be bg bn bo br bs ca cs cy da de el en es et eu fa fi fo fr gl gu ha haw he hi "
        "hr ht hu hy id is it ja jw ka kk km kn ko la lb ln lo lt lv mg mi mk ml mn mr ms mt my ne nl nn "
        "no oc pa pl ps pt ro ru sa sd si sk sl sn so sq sr su sv sw ta te tg th tk tl tr tt uk ur uz vi "
        "yi yo yue zh "
    ).split()
)
