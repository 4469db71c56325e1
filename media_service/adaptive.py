"""The ``adaptive_video`` handler: one ffmpeg run writes every rung's CMAF segments, then the
playlists are written from what it wrote, and the package is returned as one output.

Steps (for progress): fetch and convert the subtitles tracks, encode (one decode, every rung),
package (codec strings from the init segments, segment sizes → bandwidths, HLS playlists and/or
the MPD). ``hls`` keeps the HLS playlists only, ``dash`` the MPD only, ``cmaf`` both over the same
segments, with one output entry for each entry point.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Final

from transmute.tasks.v1 import tasks_pb2

from media_service import adaptive_argv, packaging, subtitles
from media_service.codec_strings import hevc_codec_string
from media_service.ladder import MAX_TOP_HEIGHT, Rung, build_ladder
from media_service.options import AdaptiveOptions, SubtitleSpec
from media_service.video_argv import check_start, expected_duration
from taskkit.errors import InputError
from taskkit.media import DEFAULT_MAX_PIXELS, Layout, ProbeResult, compute_layout, sandbox_files
from taskkit.runtime import Outcome, Output, TaskContext, output_name

HLS_MIME: Final = "application/vnd.apple.mpegurl"
DASH_MIME: Final = "application/dash+xml"
_STEPS: Final = {"subtitles": 1.0, "encode": 18.0, "package": 1.0}
_MIN_SIDE: Final = {"h264": 2, "h265": 16, "av1": 64}


def top_layout(
    opts: AdaptiveOptions, probe: ProbeResult, *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> Layout | None:
    """The top rung's picture: the options' size and fit, or the input's display size brought down
    to 1080 lines; None for an audio-only input. Never taller than the input, never over
    ``max_pixels`` (every other rung is smaller)."""
    video = probe.video
    if video is None:
        return None
    source_w, source_h = video.display_width, video.display_height
    sized = opts.width is not None or opts.height is not None
    height = opts.height if sized else (MAX_TOP_HEIGHT if source_h > MAX_TOP_HEIGHT else None)
    layout = compute_layout(
        source_w,
        source_h,
        width=opts.width,
        height=height,
        fit=opts.fit,
        position=opts.position,
        even=True,
        max_pixels=max_pixels,
    )
    if sized and layout.height > source_h:
        raise InputError(
            f"options.width/height ask for {layout.width}x{layout.height}, taller than the input "
            f"({source_w}x{source_h}); adaptive_video never upscales"
        )
    return layout


def plan(
    opts: AdaptiveOptions, probe: ProbeResult, *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> tuple[Layout | None, list[Rung]]:
    """The top rung's layout and the ladder for this input (pure); no rungs for audio only.
    ``max_pixels`` (``settings.max_pixels``) bounds the top rung, hence every rung."""
    if probe.is_image:
        raise InputError("the input is a still image, not a video")
    if probe.video is None and probe.audio is None:
        raise InputError("the input has neither video nor audio")
    check_start(opts.clip()[0], probe)
    layout = top_layout(opts, probe, max_pixels=max_pixels)
    if layout is None:
        if opts.renditions:
            raise InputError("options.renditions needs a video input, but the input has only audio")
        return None, []
    rungs = build_ladder(
        layout.width, layout.height, quality=opts.quality, codec=opts.codec, explicit=opts.renditions
    )
    smallest = min(min(rung.width, rung.height) for rung in rungs)
    if smallest < _MIN_SIDE[opts.codec]:
        raise InputError(
            f"the smallest rendition would be {smallest} pixels on a side, but {opts.codec} needs at "
            f"least {_MIN_SIDE[opts.codec]}"
        )
    return layout, rungs


async def _subtitle_tracks(ctx: TaskContext, out_dir: Path) -> tuple[packaging.SubtitleRendition, ...]:
    """Fetch each subtitles file with the safe fetcher, parse it, cut it to the window, write WebVTT."""
    opts: AdaptiveOptions = ctx.options
    start, length = opts.clip()
    window = expected_duration(opts, ctx.probe) or 0.0
    tracks = []
    report = ctx.progress.step("subtitles")
    for i, spec in enumerate(opts.subtitles):
        raw = ctx.workdir / f"subtitles-{i}.src"
        what = f"the subtitles file of options.subtitles[{i}]"
        try:
            await ctx.fetch(spec.url, raw)
        except InputError as exc:
            raise InputError(f"{what} could not be fetched: {exc.message}") from None
        cues = subtitles.parse_cues(await asyncio.to_thread(raw.read_bytes), what=what)
        vtt, playlist = f"subtitles-{i}.vtt", f"subtitles-{i}.m3u8"
        (out_dir / vtt).write_text(subtitles.webvtt(subtitles.clip_cues(cues, start, length)))
        (out_dir / playlist).write_text(packaging.subtitle_playlist(vtt, window))
        tracks.append(packaging.SubtitleRendition(spec=spec, vtt=vtt, playlist=playlist))
        await report(round(100 * (i + 1) / len(opts.subtitles)))
    await report(100)
    return tuple(tracks)


def _codecs(package: packaging.Package, out_dir: Path) -> dict[str, str]:
    """Full HEVC codec strings from the init segments where ffmpeg's MPD says only ``hvc1``."""
    found = {}
    for rep in package.representations:
        if rep.codecs in ("hvc1", "hev1"):
            full = hevc_codec_string(sandbox_files.read_bytes(out_dir / rep.init), rep.codecs)
            if full is not None:
                found[rep.id] = full
    return found


def _renditions(
    package: packaging.Package, measured: dict[str, packaging.Measured], tracks: tuple[SubtitleSpec, ...]
) -> list[tasks_pb2.Rendition]:
    out = [
        tasks_pb2.Rendition(
            type=rep.content,
            width=rep.width,
            height=rep.height,
            bitrate=measured[rep.id].average,
            codec=rep.codecs,
        )
        for rep in package.video
    ]
    if package.audio is not None:
        out.append(
            tasks_pb2.Rendition(
                type="audio", bitrate=measured[package.audio.id].average, codec=package.audio.codecs
            )
        )
    for spec in tracks:
        track = tasks_pb2.Rendition(type="subtitles", label=spec.label, codec="wvtt")
        if spec.language:
            track.language = spec.language
        out.append(track)
    return out


def write_package(
    out_dir: Path, fmt: str, tracks: tuple[packaging.SubtitleRendition, ...]
) -> tuple[packaging.Package, dict[str, packaging.Measured]]:
    """Turn ffmpeg's MPD and segments in ``out_dir`` into the package's entry points (blocking I/O);
    return the package and each representation's measured bitrates."""
    mpd_path = out_dir / adaptive_argv.MPD_NAME
    mpd_text = sandbox_files.read_text(mpd_path)
    package = packaging.read_mpd(mpd_text)
    package = packaging.with_codecs(package, _codecs(package, out_dir))
    package = packaging.Package(package.representations, package.duration, tracks)
    if not package.representations or any(not rep.segments for rep in package.representations):
        raise InputError("the encode produced no segments")
    sizes = {path.name: path.stat().st_size for path in out_dir.iterdir()}
    measured = {rep.id: packaging.measure(rep, sizes) for rep in package.representations}
    if fmt in ("hls", "cmaf"):
        for rep in package.representations:
            sandbox_files.write_text(
                out_dir / packaging.playlist_name(rep), packaging.media_playlist(rep.init, rep.segments)
            )
        master = packaging.master_playlist(package, measured)
        sandbox_files.write_text(out_dir / packaging.MASTER_NAME, master)
    if fmt == "hls":
        mpd_path.unlink()
    else:
        sandbox_files.write_text(mpd_path, packaging.final_mpd(mpd_text, package))
    if fmt == "dash":
        for track in tracks:
            (out_dir / track.playlist).unlink()
    return package, measured


async def handle(ctx: TaskContext) -> Outcome:
    opts: AdaptiveOptions = ctx.options
    layout, rungs = plan(opts, ctx.probe, max_pixels=ctx.settings.max_pixels)
    ctx.progress.plan(_STEPS)
    out_dir = ctx.output_dir("package")
    tracks = await _subtitle_tracks(ctx, out_dir)
    argv = adaptive_argv.build_adaptive_argv(
        ctx.input_path,
        out_dir,
        opts,
        ctx.probe,
        rungs,
        layout,
        ffmpeg=ctx.settings.ffmpeg_path,
    )
    await ctx.ffmpeg(argv, duration=expected_duration(opts, ctx.probe), step="encode")
    package, measured = await asyncio.to_thread(write_package, out_dir, opts.format, tracks)
    await ctx.progress.step("package")(100)
    return Outcome(_entries(ctx, out_dir, package, measured, rungs))


def _entries(
    ctx: TaskContext,
    out_dir: Path,
    package: packaging.Package,
    measured: dict[str, packaging.Measured],
    rungs: list[Rung],
) -> list[Output]:
    """One output per entry point (master playlist and/or MPD), each the whole package folder."""
    opts: AdaptiveOptions = ctx.options
    points = {"hls": [packaging.MASTER_NAME], "dash": [adaptive_argv.MPD_NAME]}
    names = points.get(opts.format, [packaging.MASTER_NAME, adaptive_argv.MPD_NAME])
    folder = output_name(ctx.task, "")
    outputs = []
    for name in names:
        entry = tasks_pb2.FileEntry(
            kind="source",
            type=HLS_MIME if name.endswith(".m3u8") else DASH_MIME,
            duration=round(package.duration, 3),
        )
        if rungs:
            entry.width, entry.height = rungs[0].width, rungs[0].height
            entry.codec = package.video[0].codecs
        if package.audio is not None:
            entry.audio_codec = package.audio.codecs
        entry.renditions.extend(_renditions(package, measured, opts.subtitles))
        outputs.append(Output(path=out_dir / name, name=folder, entry=entry, package=out_dir))
    return outputs
