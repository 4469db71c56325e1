"""The media kinds' handlers: options → argv (or Pillow) → run → describe the output.

Each handler gets a TaskContext with the fetched, probed input and returns the files to store;
the shared worker does the lifecycle, uploads and acks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from media_service import audio_argv, image_ops, video_argv
from media_service.options import AudioOptions, ImageOptions, VideoOptions
from taskkit.media import file_entry, probe
from taskkit.runtime import Outcome, Output, TaskContext, output_name


async def _describe(
    ctx: TaskContext,
    path: Path,
    extension: str,
    mime: str,
    *,
    size: tuple[int, int] | None = None,
    fallback_size: tuple[int, int] | None = None,
) -> Output:
    """The output entry from a probe of what was written. ``size`` (what Pillow wrote) wins over the
    probe's; ``fallback_size`` (what ffmpeg was told to write) fills in a size the probe lacks: a
    prober can refuse a picture that large (ffmpeg's own image size check) and report 0×0."""
    probed = await probe(path, rotation=False)  # our encodes are upright, no display matrix
    entry = file_entry(probed, kind="source", mime_type=mime)
    if size is None and not (entry.width and entry.height):
        size = fallback_size
    if size is not None:
        entry.width, entry.height = size
    return Output(path=path, name=output_name(ctx.task, extension), entry=entry)


async def video(ctx: TaskContext) -> Outcome:
    opts: VideoOptions = ctx.options
    extension, mime = video_argv.output_extension(opts.format), video_argv.output_mime(opts.format)
    build = partial(video_argv.build_video_argv, max_pixels=ctx.settings.max_pixels)
    return await _encode(ctx, opts, build, extension, mime)


async def audio(ctx: TaskContext) -> Outcome:
    opts: AudioOptions = ctx.options
    extension, mime = audio_argv.output_extension(opts.format), audio_argv.output_mime(opts.format)
    return await _encode(ctx, opts, audio_argv.build_audio_argv, extension, mime)


async def _encode(
    ctx: TaskContext, opts: Any, build: Callable[..., list[str]], extension: str, mime: str
) -> Outcome:
    """One ffmpeg run from the input to a single output file (video and audio kinds)."""
    dst = ctx.workdir / f"output{extension}"
    argv = build(ctx.input_path, dst, opts, ctx.probe, ffmpeg=ctx.settings.ffmpeg_path)
    await ctx.ffmpeg(argv, duration=video_argv.expected_duration(opts, ctx.probe))
    return Outcome([await _describe(ctx, dst, extension, mime)])


async def image(ctx: TaskContext) -> Outcome:
    """Image inputs go through Pillow; a video input gives one frame through ffmpeg."""
    opts: ImageOptions = ctx.options
    size: tuple[int, int] | None = None  # what Pillow wrote: the entry's size, whatever a probe says
    fallback_size: tuple[int, int] | None = None  # what ffmpeg was told to write
    if ctx.probe.is_image:
        staged = ctx.workdir / "output.img"
        info = await asyncio.to_thread(
            image_ops.transform_image, ctx.input_path, staged, opts, max_pixels=ctx.settings.max_pixels
        )
        fmt = info.format
        dst = staged.rename(ctx.workdir / f"output{image_ops.output_extension(fmt)}")
        await ctx.report(100)
        size = (info.width, info.height)
    else:
        fmt = image_ops.frame_format(opts)
        dst = ctx.workdir / f"output{image_ops.output_extension(fmt)}"
        max_pixels = ctx.settings.max_pixels
        argv = image_ops.build_frame_argv(
            ctx.input_path, dst, opts, ctx.probe, ffmpeg=ctx.settings.ffmpeg_path, max_pixels=max_pixels
        )
        await ctx.ffmpeg(argv, duration=None)
        layout = image_ops.frame_layout(opts, ctx.probe, max_pixels=max_pixels)
        fallback_size = (layout.width, layout.height)
    extension, mime = image_ops.output_extension(fmt), image_ops.output_mime(fmt)
    output = await _describe(ctx, dst, extension, mime, size=size, fallback_size=fallback_size)
    return Outcome([output])
