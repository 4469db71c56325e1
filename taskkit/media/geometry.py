"""Output size and fit: one implementation of the math, rendered for ffmpeg and for Pillow.

``compute_layout`` turns the input's display size (after rotation) and the ``width``/``height``/
``fit``/``position`` options into a ``Layout``: the final size, the size the picture is scaled to
first, and the pad (``contain``) or crop (``cover``) offset. ``ffmpeg_filters`` and
``apply_layout`` only render that layout, so video, video frames and images agree pixel for pixel.

Rules: sizes are pixels or a percentage of the input side; with only one side given the other keeps
the input's aspect ratio (and ``fit`` has nothing to do); with neither the input size is kept.
Video sizes are rounded to even numbers (4:2:0 chroma needs them), minimum 2; image sizes to whole
pixels, minimum 1. ``fit`` defaults to ``fill`` (stretch), ``position`` to ``center``.

Limits, checked here before any pixel is touched (so every kind that scales shares them): an output
side is at most ``MAX_DIMENSION``, and what gets allocated is at most ``max_pixels`` (the input limit,
``settings.max_pixels``, passed in by the caller): the output, and for ``cover`` also the scaled
picture before the crop, which can be much larger than the output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal

from PIL import Image

from taskkit.config import Settings
from taskkit.errors import InputError

Fit = Literal["contain", "cover", "fill"]

# Largest output side we produce, whatever the options and input say (memory and encoder limits).
MAX_DIMENSION: Final = 16384
# The pixel limit (``settings.max_pixels``) for callers that are not given one (benchmarks, tests);
# the handlers always pass the configured value.
DEFAULT_MAX_PIXELS: Final[int] = Settings.model_fields["max_pixels"].default

# position -> (horizontal, vertical) anchor: 0 = left/top edge, 0.5 = centre, 1 = right/bottom edge.
POSITION_ANCHORS: Final[dict[str, tuple[float, float]]] = {
    "center": (0.5, 0.5),
    "top": (0.5, 0.0),
    "bottom": (0.5, 1.0),
    "left": (0.0, 0.5),
    "right": (1.0, 0.5),
    "top_left": (0.0, 0.0),
    "top_right": (1.0, 0.0),
    "bottom_left": (0.0, 1.0),
    "bottom_right": (1.0, 1.0),
}


@dataclass(frozen=True)
class Percent:
    """A length relative to the input's side, e.g. ``Percent(50.0)`` for ``"50%"``."""

    value: float

    def __str__(self) -> str:
        return f"{self.value:g}%"


Length = int | Percent


@dataclass(frozen=True)
class Layout:
    """Where the input's pixels go: scale to ``scaled_*``, then pad or crop to ``width`` by ``height``.

    ``x``/``y`` are the offset of the scaled picture inside the output for ``contain`` (pad) and the
    offset of the output window inside the scaled picture for ``cover`` (crop); 0 for ``fill``.
    """

    fit: Fit
    width: int
    height: int
    scaled_width: int
    scaled_height: int
    x: int = 0
    y: int = 0


def _resolve(length: Length | None, side: int) -> float | None:
    if length is None:
        return None
    if isinstance(length, Percent):
        return side * length.value / 100.0
    return float(length)


def _round(value: float, even: bool) -> int:
    if even:
        return max(2, math.floor(value / 2 + 0.5) * 2)
    return max(1, math.floor(value + 0.5))


def _offset(space: int, anchor: float, even: bool) -> int:
    value = math.floor(space * anchor)
    return value - value % 2 if even else value


def _pixels(width: int, height: int) -> str:
    return f"{width}×{height} pixels ({width * height:,})"


def target_size(
    src_width: int,
    src_height: int,
    width: Length | None,
    height: Length | None,
    *,
    even: bool,
    max_pixels: int,
) -> tuple[int, int]:
    """The output size before fit: pixels or percent per side, aspect kept when one side is given.

    InputError when a side is over ``MAX_DIMENSION`` or the whole over ``max_pixels``."""
    if src_width <= 0 or src_height <= 0:
        raise InputError("the input has no picture size")
    w = _resolve(width, src_width)
    h = _resolve(height, src_height)
    if w is None:
        w = src_width if h is None else h * src_width / src_height
    if h is None:
        h = w * src_height / src_width
    out = (_round(w, even), _round(h, even))
    if max(out) > MAX_DIMENSION:
        raise InputError(
            f"the output would be {out[0]}×{out[1]} pixels, over the limit of {MAX_DIMENSION} pixels a side"
        )
    if out[0] * out[1] > max_pixels:
        raise InputError(f"the output would be {_pixels(*out)}, over the limit of {max_pixels:,} pixels")
    return out


def compute_layout(
    src_width: int,
    src_height: int,
    *,
    width: Length | None,
    height: Length | None,
    fit: Fit | None,
    position: str | None,
    even: bool,
    max_pixels: int,
) -> Layout:
    """Resolve size and fit into a Layout; ``even`` for video (4:2:0) outputs.

    InputError when the output, or the picture scaled for ``cover`` before its crop, is over
    ``max_pixels`` (or an output side over ``MAX_DIMENSION``)."""
    out_w, out_h = target_size(src_width, src_height, width, height, even=even, max_pixels=max_pixels)
    mode: Fit = fit if (fit is not None and width is not None and height is not None) else "fill"
    if mode == "fill":
        return Layout("fill", out_w, out_h, out_w, out_h)
    pick = min if mode == "contain" else max
    scale = pick(out_w / src_width, out_h / src_height)
    scaled_w = _round(src_width * scale, even)
    scaled_h = _round(src_height * scale, even)
    # Rounding must not push the picture outside the box (contain) or leave a gap (cover).
    clamp = min if mode == "contain" else max
    scaled_w, scaled_h = clamp(scaled_w, out_w), clamp(scaled_h, out_h)
    # contain scales inside the output (already checked); cover scales past it, then crops.
    if mode == "cover" and scaled_w * scaled_h > max_pixels:
        raise InputError(
            f"with fit cover the picture would be scaled to {_pixels(scaled_w, scaled_h)} before its "
            f"crop to {out_w}×{out_h}, over the limit of {max_pixels:,} pixels"
        )
    anchor_x, anchor_y = POSITION_ANCHORS[position or "center"]
    x = _offset(abs(out_w - scaled_w), anchor_x, even)
    y = _offset(abs(out_h - scaled_h), anchor_y, even)
    return Layout(mode, out_w, out_h, scaled_w, scaled_h, x, y)


def ffmpeg_filters(layout: Layout, *, background: str | None, alpha: bool) -> list[str]:
    """The filter chain (to be joined with commas) that renders ``layout``.

    ``background`` is ``"#rrggbb"`` or None; None pads transparent when ``alpha`` (the output
    format keeps an alpha channel), black otherwise. ``setsar=1`` makes pixels square so ``fill``
    really stretches instead of being undone by the player.
    """
    filters = [f"scale={layout.scaled_width}:{layout.scaled_height}:flags=lanczos"]
    if layout.fit == "contain":
        if background is not None:
            color = "0x" + background.removeprefix("#")
        elif alpha:
            filters.append("format=rgba")
            color = "black@0"
        else:
            color = "black"
        filters.append(f"pad={layout.width}:{layout.height}:{layout.x}:{layout.y}:color={color}")
    elif layout.fit == "cover":
        filters.append(f"crop={layout.width}:{layout.height}:{layout.x}:{layout.y}")
    filters.append("setsar=1")
    return filters


def apply_layout(image: Image.Image, layout: Layout, *, fill: tuple[int, ...]) -> Image.Image:
    """Render ``layout`` with Pillow (LANCZOS); ``fill`` is the pad colour in ``image.mode``."""
    scaled_size = (layout.scaled_width, layout.scaled_height)
    scaled = image if image.size == scaled_size else image.resize(scaled_size, Image.Resampling.LANCZOS)
    if layout.fit == "contain":
        canvas = Image.new(image.mode, (layout.width, layout.height), fill)
        canvas.paste(scaled, (layout.x, layout.y))
        return canvas
    if layout.fit == "cover":
        return scaled.crop((layout.x, layout.y, layout.x + layout.width, layout.y + layout.height))
    return scaled
