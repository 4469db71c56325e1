"""Test support helpers: a generated media corpus and a local HTTP origin server.

The helpers here are plain functions and classes; fixtures wiring them into the test
suite live in ``conftest.py`` files.
"""

from .corpus import Corpus, build_corpus, ffprobe_json, make_hd_clip, mp4_top_level_boxes
from .origin import Origin, RequestRecord

__all__ = [
    "Corpus",
    "Origin",
    "RequestRecord",
    "build_corpus",
    "ffprobe_json",
    "make_hd_clip",
    "mp4_top_level_boxes",
]
