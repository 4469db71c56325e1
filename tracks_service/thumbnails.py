"""``thumbnails``: sprite sheets of the video's frames in one ffmpeg pass, with a WebVTT and a JSON
storyboard that map each interval of the timeline to its tile.

Every file goes into one package folder (``<task>/<name>/``): the storyboards name the sheets by
relative paths (``sprite_0.jpg#xywh=…``), and every output's link is a grant for that folder, so a
player resolving ``sprite_0.jpg`` against the storyboard's link gets a signed link too. The stored
JSON uses the same relative names rather than links, which would expire inside a file that does
not.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Final

from transmute.tasks.v1 import tasks_pb2

from taskkit.errors import InputError
from taskkit.media import DEFAULT_MAX_PIXELS, ProbeResult, base_argv, input_args, sandbox_files
from taskkit.runtime import Outcome, Output, TaskContext, output_name
from tracks_service.options import ThumbnailsOptions
from tracks_service.storyboard import (
    SHEET_FORMATS,
    Storyboard,
    plan_storyboard,
    storyboard_json,
    storyboard_vtt,
    thumbnails_argv,
    tile_size,
)

VTT_NAME: Final = "storyboard.vtt"
JSON_NAME: Final = "storyboard.json"


def sheet_name(index: int, image_format: str) -> str:
    return f"sprite_{index}.{SHEET_FORMATS[image_format][0]}"


def plan(opts: ThumbnailsOptions, probe: ProbeResult, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Storyboard:
    """The storyboard of this input (pure; shared with bench.thumbnails): tile size from the
    display size, frames and sheets from the duration; InputError for media without a picture."""
    video = probe.video
    if video is None or probe.is_image:
        raise InputError("the input has no video to take thumbnails of")
    width, height = tile_size(
        video.display_width, video.display_height, opts.width, opts.height, max_pixels=max_pixels
    )
    return plan_storyboard(
        probe.duration or 0.0,
        interval=opts.interval,
        count=opts.count,
        columns=opts.columns,
        rows=opts.rows,
        tile_width=width,
        tile_height=height,
        max_pixels=max_pixels,
    )


def build_argv(
    opts: ThumbnailsOptions, src: Path, probe: ProbeResult, board: Storyboard, out_dir: Path, *, ffmpeg: str
) -> list[str]:
    """The one ffmpeg argv that writes every sheet of ``board`` into ``out_dir``."""
    head = [*base_argv(ffmpeg), *input_args(src, probe, 0.0, None)]
    pattern = str(out_dir / f"sprite_%d.{SHEET_FORMATS[opts.format][0]}")
    return thumbnails_argv(head, pattern, board, format=opts.format, quality=opts.quality)


def write_storyboards(board: Storyboard, out_dir: Path, image_format: str) -> None:
    names = [sheet_name(sheet.index, image_format) for sheet in board.sheets]
    missing = [name for name in names if not os.path.lexists(out_dir / name)]
    if missing:
        raise InputError(f"the video ended before every thumbnail was taken ({len(missing)} sheets missing)")
    sandbox_files.write_text(out_dir / VTT_NAME, storyboard_vtt(board, sheet_name=lambda i: names[i]))
    sandbox_files.write_text(out_dir / JSON_NAME, json.dumps(storyboard_json(board, sheet_urls=names)))


def outputs(ctx: TaskContext, board: Storyboard, out_dir: Path) -> list[Output]:
    """The WebVTT storyboard, the JSON storyboard, then each sheet: one package folder."""
    opts: ThumbnailsOptions = ctx.options
    folder = output_name(ctx.task, "")
    duration = round(board.duration, 3)
    entries = [
        (VTT_NAME, tasks_pb2.FileEntry(kind="track", type="text/vtt", label="Thumbnails", duration=duration)),
        (JSON_NAME, tasks_pb2.FileEntry(kind="track", type="application/json", duration=duration)),
    ]
    mime = SHEET_FORMATS[opts.format][1]
    entries += [
        (
            sheet_name(sheet.index, opts.format),
            tasks_pb2.FileEntry(kind="source", type=mime, width=sheet.width, height=sheet.height),
        )
        for sheet in board.sheets
    ]
    for name, entry in entries:
        entry.filesize = (out_dir / name).stat().st_size  # each file's own, not the folder's
    return [Output(path=out_dir / name, name=folder, entry=entry, package=out_dir) for name, entry in entries]


async def handle(ctx: TaskContext) -> Outcome:
    opts: ThumbnailsOptions = ctx.options
    board = plan(opts, ctx.probe, max_pixels=ctx.settings.max_pixels)
    out_dir = ctx.output_dir("storyboard")
    argv = build_argv(opts, ctx.input_path, ctx.probe, board, out_dir, ffmpeg=ctx.settings.ffmpeg_path)
    await ctx.ffmpeg(argv, duration=board.duration)
    write_storyboards(board, out_dir, opts.format)
    return Outcome(outputs(ctx, board, out_dir))
