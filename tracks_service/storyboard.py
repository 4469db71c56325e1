"""Thumbnails: the plan of a storyboard (which frame goes where), its ffmpeg argv, WebVTT and JSON.

Pure: nothing here runs ffmpeg or touches a file. The handler resolves the options, probes the
input and calls :func:`plan_storyboard`; everything else renders that one plan, so the sheet files,
the WebVTT cues and the JSON can never disagree about a tile.

Timeline. Frame ``i`` covers ``[i*interval, (i+1)*interval)``, the last one ending at the exact
duration; by default the whole duration in at most ``MAX_DEFAULT_FRAMES`` frames, at least one
second apart. A tail shorter than a millisecond gets no frame of its own: its cue
would be empty once written in WebVTT's millisecond precision, so the previous tile is stretched
over it instead.

Sheets. Tiles fill ``columns`` × ``rows`` grids, row by row. The last sheet gets a grid of its own,
as many rows as it needs (and fewer columns when it has less than one row of tiles), so a short
video does not give a mostly black image. ffmpeg's ``tile`` filter always pads to its full grid, so
the argv splits the frames (``split``) into two branches, one ``tile`` per grid: still one
decode, and every sheet file has exactly the size its ``Sheet`` says. Cells of the last sheet's
last row that no tile reaches stay black.

Frame choice. ``select`` keeps the first frame at or after each ``i*interval``; ``fps`` at the same
rate (rounding down, so a kept frame lands in its own interval) duplicates the last one over gaps
(variable frame rate, or an interval shorter than a frame); ``tpad``, cloning the last frame, and
``trim`` then make the count exactly ``frames`` even when the video stream ends before or after the
container duration the plan was made from.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Final

from taskkit.errors import InputError
from taskkit.media import (
    DEFAULT_MAX_PIXELS,
    MAX_DIMENSION,
    Length,
    cue_time,
    image_quality,
    mjpeg_qscale,
    target_size,
)

DEFAULT_TILE_WIDTH: Final = 160
DEFAULT_COLUMNS: Final = 10
DEFAULT_ROWS: Final = 10
MAX_DEFAULT_FRAMES: Final = 100
MAX_FRAMES: Final = 10_000  # a storyboard's tiles; more is no longer a preview (and 100 sheets)
MIN_DEFAULT_INTERVAL: Final = 1.0
# WebVTT times are milliseconds: frames closer than that would give empty cues.
MIN_INTERVAL: Final = 0.001

# format -> (file extension, MIME type)
SHEET_FORMATS: Final[dict[str, tuple[str, str]]] = {
    "jpeg": ("jpg", "image/jpeg"),
    "png": ("png", "image/png"),
    "webp": ("webp", "image/webp"),
}


@dataclass(frozen=True)
class Tile:
    """Frame ``index``: shown for ``[start, end)`` seconds, at pixel ``x``/``y`` of sheet ``sheet``."""

    index: int
    start: float
    end: float
    sheet: int
    x: int
    y: int


@dataclass(frozen=True)
class Sheet:
    """One sprite image: its grid and its pixel size (``columns * tile_width`` by ``rows * tile_height``)."""

    index: int
    columns: int
    rows: int
    width: int
    height: int


@dataclass(frozen=True)
class Storyboard:
    """Every tile and sheet of one thumbnails task, in order."""

    duration: float
    interval: float
    frames: int
    tile_width: int
    tile_height: int
    tiles: tuple[Tile, ...]
    sheets: tuple[Sheet, ...]


def tile_size(
    src_width: int,
    src_height: int,
    width: Length | None,
    height: Length | None,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[int, int]:
    """A tile's pixels from the input's display size: ``DEFAULT_TILE_WIDTH`` wide when neither side
    is given, the aspect kept when one is. Sizes need not be even (the sheets are still images)."""
    if width is None and height is None:
        width = DEFAULT_TILE_WIDTH
    return target_size(src_width, src_height, width, height, even=False, max_pixels=max_pixels)


def _interval(duration: float, interval: float | None, count: int | None) -> float:
    if interval is not None and count is not None:
        raise ValueError("give interval or count, not both")
    if count is not None:
        chosen = duration / count
    elif interval is not None:
        chosen = interval
    else:
        chosen = max(MIN_DEFAULT_INTERVAL, duration / MAX_DEFAULT_FRAMES)
    if chosen < MIN_INTERVAL:
        raise InputError(
            f"the thumbnails would be {chosen * 1000:.3g} ms apart; "
            f"they must be at least {MIN_INTERVAL * 1000:g} ms apart"
        )
    return chosen


def _sheet_grids(frames: int, columns: int, rows: int) -> list[tuple[int, int, int]]:
    """(tiles, columns, rows) per sheet: full grids, then the last sheet's own grid."""
    per_sheet = columns * rows
    full, rest = divmod(frames, per_sheet)
    grids = [(per_sheet, columns, rows)] * full
    if rest:
        last_columns = min(columns, rest)
        grids.append((rest, last_columns, math.ceil(rest / last_columns)))
    return grids


def plan_storyboard(
    duration: float,
    *,
    interval: float | None = None,
    count: int | None = None,
    columns: int = DEFAULT_COLUMNS,
    rows: int = DEFAULT_ROWS,
    tile_width: int,
    tile_height: int,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Storyboard:
    """Place ``ceil(duration / interval)`` frames on sheets; ``interval`` or ``count`` (not both).

    InputError when the input has no duration, the frames would be under ``MIN_INTERVAL`` apart or
    more than ``MAX_FRAMES``, or a sheet would be over ``MAX_DIMENSION`` a side or over ``max_pixels``."""
    if not duration > 0:
        raise InputError("the input has no duration to take thumbnails over")
    if columns < 1 or rows < 1 or tile_width < 1 or tile_height < 1:
        raise ValueError("columns, rows and the tile size must be at least 1")
    step = _interval(duration, interval, count)
    # The tolerance keeps a float error (7200 / 72.000000001) or a sub-millisecond tail from
    # adding a frame; the last tile is stretched to the exact duration below.
    frames = max(1, math.ceil((duration - MIN_INTERVAL) / step))
    if frames > MAX_FRAMES:
        raise InputError(
            f"thumbnails every {step:g} s over {duration:g} s would be {frames:,} frames, over the limit of "
            f"{MAX_FRAMES:,}; use a longer interval or a count"
        )
    tiles: list[Tile] = []
    sheets: list[Sheet] = []
    for sheet_index, (on_sheet, sheet_columns, sheet_rows) in enumerate(_sheet_grids(frames, columns, rows)):
        width, height = sheet_columns * tile_width, sheet_rows * tile_height
        if max(width, height) > MAX_DIMENSION:
            raise InputError(
                f"a thumbnails sheet would be {width}×{height} pixels, over the limit of {MAX_DIMENSION} "
                "pixels a side; use fewer columns or rows, or smaller tiles"
            )
        if width * height > max_pixels:
            raise InputError(
                f"a thumbnails sheet would be {width}×{height} pixels, over the limit of {max_pixels:,} "
                "pixels; use fewer columns or rows, or smaller tiles"
            )
        sheets.append(Sheet(sheet_index, sheet_columns, sheet_rows, width, height))
        for position in range(on_sheet):
            index = len(tiles)
            end = duration if index == frames - 1 else (index + 1) * step
            row, column = divmod(position, sheet_columns)
            tiles.append(Tile(index, index * step, end, sheet_index, column * tile_width, row * tile_height))
    return Storyboard(duration, step, frames, tile_width, tile_height, tuple(tiles), tuple(sheets))


def _rational(seconds: float) -> Fraction:
    """The interval as the ratio ffmpeg is given (6.5 -> 13/2, 7200/37 stays 7200/37), so ``select``
    and ``fps`` agree on every boundary instead of each rounding a decimal its own way."""
    return Fraction(seconds).limit_denominator(1_000_000)


def _codec_args(image_format: str, quality: str | None) -> list[str]:
    if image_format == "jpeg":
        return ["-c:v", "mjpeg", "-q:v", str(mjpeg_qscale(quality)), "-pix_fmt", "yuvj420p"]
    if image_format == "png":
        return ["-c:v", "png"]
    if image_format == "webp":
        return ["-c:v", "libwebp", "-quality", str(image_quality("webp", quality))]
    raise ValueError(f"unknown sheet format {image_format!r}")


@dataclass(frozen=True)
class _GridRun:
    """Consecutive sheets sharing one grid: one ``tile`` filter and one image2 output."""

    first_sheet: int
    first_tile: int
    end_tile: int
    grid: str  # tile's layout, ``CxR``


def _grid_runs(storyboard: Storyboard) -> list[_GridRun]:
    """The full sheets, then the last one when its grid differs (so at most two runs)."""
    first_tiles: dict[int, int] = {}
    for tile in storyboard.tiles:
        first_tiles.setdefault(tile.sheet, tile.index)
    runs: list[_GridRun] = []
    for sheet in storyboard.sheets:
        grid = f"{sheet.columns}x{sheet.rows}"
        if runs and runs[-1].grid == grid:
            continue
        if runs:
            runs[-1] = dataclasses.replace(runs[-1], end_tile=first_tiles[sheet.index])
        runs.append(_GridRun(sheet.index, first_tiles[sheet.index], storyboard.frames, grid))
    return runs


def thumbnails_argv(
    src_input_args: list[str],
    out_pattern: str,
    storyboard: Storyboard,
    *,
    format: str,
    quality: str | None,
) -> list[str]:
    """The complete argv that writes every sheet in one decode.

    ``src_input_args`` is the head and the input (``base_argv(...) + input_args(src, probe, 0,
    None)``); ``out_pattern`` is an image2 pattern with one ``%d`` (``sprite_%d.jpg``), numbered from
    0 like ``Sheet.index``. ``quality`` is a level of the quality table (ignored for png)."""
    if out_pattern.count("%d") != 1:
        raise ValueError("out_pattern needs exactly one %d")
    step = _rational(storyboard.interval)
    frames = (
        f"[0:v:0]select='gte(t\\,selected_n*{step.numerator}/{step.denominator})',"
        f"fps=fps={step.denominator}/{step.numerator}:round=down:eof_action=pass,"
        f"tpad=stop=-1:stop_mode=clone,trim=end_frame={storyboard.frames},"
        f"scale={storyboard.tile_width}:{storyboard.tile_height}"
    )
    groups = _grid_runs(storyboard)
    if len(groups) == 1:
        graph = f"{frames},tile={groups[0].grid}[s0]"
    else:
        branches = "".join(f"[b{i}]" for i in range(len(groups)))
        parts = [f"{frames},split={len(groups)}{branches}"]
        parts += [
            f"[b{i}]trim=start_frame={run.first_tile}:end_frame={run.end_tile},tile={run.grid}[s{i}]"
            for i, run in enumerate(groups)
        ]
        graph = ";".join(parts)
    argv = [*src_input_args, "-filter_complex", graph]
    codec = _codec_args(format, quality)
    for i, run in enumerate(groups):
        argv += ["-map", f"[s{i}]", "-fps_mode", "vfr", *codec]
        argv += ["-f", "image2", "-start_number", str(run.first_sheet), out_pattern]
    return argv


def storyboard_vtt(storyboard: Storyboard, *, sheet_name: Callable[[int], str]) -> str:
    """The WebVTT storyboard players read (``sprite_0.jpg#xywh=x,y,w,h``): one cue per tile,
    contiguous from 0 to the duration. ``sheet_name`` gives each sheet's path relative to the VTT."""
    w, h = storyboard.tile_width, storyboard.tile_height
    cues = [
        f"{cue_time(t.start)} --> {cue_time(t.end)}\n{sheet_name(t.sheet)}#xywh={t.x},{t.y},{w},{h}\n"
        for t in storyboard.tiles
    ]
    return "WEBVTT\n\n" + "\n".join(cues)


def storyboard_json(storyboard: Storyboard, *, sheet_urls: list[str]) -> dict[str, Any]:
    """The same storyboard as JSON (times in seconds, to the millisecond like the VTT); ``sheet_urls``
    holds one URL per sheet, in order."""
    if len(sheet_urls) != len(storyboard.sheets):
        raise ValueError(f"{len(storyboard.sheets)} sheets but {len(sheet_urls)} URLs")
    return {
        "tile_width": storyboard.tile_width,
        "tile_height": storyboard.tile_height,
        "sheets": [
            {"url": url, "columns": sheet.columns, "rows": sheet.rows}
            for url, sheet in zip(sheet_urls, storyboard.sheets, strict=True)
        ],
        "tiles": [
            {"start": round(t.start, 3), "end": round(t.end, 3), "sheet": t.sheet, "x": t.x, "y": t.y}
            for t in storyboard.tiles
        ],
    }
