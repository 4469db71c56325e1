"""The bitrate ladder of an ``adaptive_video`` package (pure).

The table follows Apple's HLS authoring specification (average H.264 bitrates at 30 fps):

| height | H.264 average |
|--------|---------------|
| 1080   | 6000 kb/s     |
| 720    | 3000 kb/s     |
| 540    | 2000 kb/s     |
| 360    | 730 kb/s      |
| 240    | 365 kb/s      |

scaled by ``quality`` (very_low 0.6, low 0.8, medium 1, high 1.25, very_high 1.5) and by codec
efficiency (h264 1, h265 0.65, av1 0.55: the usual savings at equal quality).

Rules:

* The top rung is the input's display size, scaled down to 1080 lines when it is taller, or the
  size ``width``/``height``/``fit`` ask for (refused when taller than the input, or when it, or
  the picture ``cover`` scales before its crop, is over ``settings.max_pixels``): nothing is
  upscaled. A top rung between table rows gets a bitrate interpolated by height between the rows.
* Below the top, each table row is kept when it is at most 80 % of the height of the rung above it
  (a 600p input gives 600, 360, 240: 540p would be too close to 600p to be worth a switch).
* Widths keep the top rung's aspect ratio, rounded to even numbers.
* ``renditions`` replaces the automatic ladder; a rung taller than the top rung is refused and a rung
  without a bitrate takes the table's value for its height.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Final

from media_service.options import RungSpec
from taskkit.errors import InputError

TABLE: Final[tuple[tuple[int, int], ...]] = (
    (1080, 6_000_000),
    (720, 3_000_000),
    (540, 2_000_000),
    (360, 730_000),
    (240, 365_000),
)
QUALITY_FACTOR: Final = {"very_low": 0.6, "low": 0.8, "medium": 1.0, "high": 1.25, "very_high": 1.5}
CODEC_FACTOR: Final = {"h264": 1.0, "h265": 0.65, "av1": 0.55}
MAX_TOP_HEIGHT: Final = TABLE[0][0]
MIN_STEP: Final = 0.8  # a rung must be at most this fraction of the height of the rung above it
MIN_BITRATE: Final = 100_000


@dataclass(frozen=True)
class Rung:
    width: int
    height: int
    bitrate: int  # target average bits/s of the video stream


def _even(value: float) -> int:
    return max(2, math.floor(value / 2 + 0.5) * 2)


def table_bitrate(height: int) -> int:
    """H.264 average bits/s at medium quality for any height, interpolated between table rows."""
    if height >= TABLE[0][0]:
        return TABLE[0][1]
    for (upper_h, upper_b), (lower_h, lower_b) in itertools.pairwise(TABLE):
        if lower_h <= height <= upper_h:
            share = (height - lower_h) / (upper_h - lower_h)
            return round(lower_b + share * (upper_b - lower_b))
    lowest_h, lowest_b = TABLE[-1]
    return max(MIN_BITRATE, round(lowest_b * (height / lowest_h) ** 2))


def _bitrate(height: int, quality: str, codec: str) -> int:
    scaled = table_bitrate(height) * QUALITY_FACTOR[quality] * CODEC_FACTOR[codec]
    return max(MIN_BITRATE, round(scaled / 1000) * 1000)


def automatic_heights(top: int) -> list[int]:
    """The rung heights for a top rung of ``top`` pixels, tallest first."""
    heights = [top]
    for height, _ in TABLE:
        if height <= heights[-1] * MIN_STEP:
            heights.append(height)
    return heights


def build_ladder(
    top_width: int,
    top_height: int,
    *,
    quality: str,
    codec: str,
    explicit: tuple[RungSpec, ...] | None = None,
) -> list[Rung]:
    """The rungs, tallest first, of a picture laid out at ``top_width`` x ``top_height`` (the caller
    caps it: the input's display size, or what ``width``/``height`` ask for, never upscaled).

    Every rung keeps the top rung's aspect ratio. ``explicit`` rungs must not be taller than the top.
    """
    if explicit:
        too_tall = [spec.height for spec in explicit if spec.height > top_height]
        if too_tall:
            raise InputError(
                f"options.renditions asks for {too_tall[0]}p, taller than the {top_height}-pixel-high "
                "picture (adaptive_video never upscales)"
            )
        heights = [spec.height for spec in explicit]
        given = {spec.height: spec.bitrate for spec in explicit}
    else:
        heights = automatic_heights(top_height)
        given = {}
    aspect = top_width / top_height
    return [
        Rung(
            width=top_width if height == top_height else _even(height * aspect),
            height=height,
            bitrate=given.get(height) or _bitrate(height, quality, codec),
        )
        for height in heights
    ]
