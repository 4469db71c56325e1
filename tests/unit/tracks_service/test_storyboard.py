"""Thumbnails storyboards: the plan, its WebVTT and JSON, and real ffmpeg runs of its argv."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageStat

from taskkit.errors import InputError
from taskkit.media import base_argv, input_args, probe
from tests.support.corpus import FFMPEG
from tracks_service.storyboard import (
    SHEET_FORMATS,
    Storyboard,
    plan_storyboard,
    storyboard_json,
    storyboard_vtt,
    thumbnails_argv,
    tile_size,
)

_X264 = ("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")
_TIME = r"(\d\d):(\d\d):(\d\d)\.(\d{3})"
_CUE = re.compile(rf"{_TIME} --> {_TIME}\n(sprite_(\d+)\.jpg)#xywh=(\d+),(\d+),(\d+),(\d+)\n")


def _ffmpeg(*args: str) -> None:
    subprocess.run([FFMPEG, "-nostdin", "-loglevel", "error", *args], check=True, timeout=60)


def _grey(image: Image.Image, xy: tuple[int, int]) -> int:
    value = image.getpixel(xy)
    assert isinstance(value, int)
    return value


def _millis(h: str, m: str, s: str, ms: str) -> int:
    return ((int(h) * 60 + int(m)) * 60 + int(s)) * 1000 + int(ms)


def _check_vtt(board: Storyboard) -> None:
    """Cues tile [0, duration] with no gap or overlap and every xywh lies inside its sheet."""
    vtt = storyboard_vtt(board, sheet_name=lambda i: f"sprite_{i}.jpg")
    assert vtt.startswith("WEBVTT\n\n")
    cues = _CUE.findall(vtt)
    assert len(cues) == board.frames == len(vtt.split("\n\n")) - 1
    previous_end = 0
    for cue in cues:
        start, end = _millis(*cue[0:4]), _millis(*cue[4:8])
        assert start == previous_end and end > start
        previous_end = end
        sheet = board.sheets[int(cue[9])]
        x, y, w, h = (int(v) for v in cue[10:14])
        assert (w, h) == (board.tile_width, board.tile_height)
        assert 0 <= x and x + w <= sheet.width and 0 <= y and y + h <= sheet.height
    assert previous_end == round(board.duration * 1000)


def _check_plan(board: Storyboard) -> None:
    """The tiles themselves: contiguous floats, distinct cells, sheet sizes from their grids."""
    assert board.tiles[0].start == 0
    for before, after in zip(board.tiles, board.tiles[1:], strict=False):
        assert before.end == after.start
    assert board.tiles[-1].end == board.duration
    assert [t.index for t in board.tiles] == list(range(board.frames))
    cells = {(t.sheet, t.x, t.y) for t in board.tiles}
    assert len(cells) == board.frames
    for sheet in board.sheets:
        assert (sheet.width, sheet.height) == (
            sheet.columns * board.tile_width,
            sheet.rows * board.tile_height,
        )
        on_sheet = [t for t in board.tiles if t.sheet == sheet.index]
        # A sheet's last row is used: no sheet is taller than its tiles need.
        assert max(t.y for t in on_sheet) == sheet.height - board.tile_height


@pytest.mark.parametrize(
    ("duration", "kwargs"),
    [
        (3.0, {}),
        (7200.0, {}),
        (12.345678, {"count": 7}),
        (10.0, {"interval": 0.3}),
        (59.94, {"interval": 6.5, "columns": 3, "rows": 2}),
        (3661.5, {"columns": 1, "rows": 1}),
        (1000.0, {"count": 250, "columns": 7, "rows": 3}),
    ],
)
def test_cues_tile_the_timeline(duration: float, kwargs: dict[str, Any]) -> None:
    board = plan_storyboard(duration, tile_width=160, tile_height=90, **kwargs)
    _check_plan(board)
    _check_vtt(board)


def test_three_seconds_by_default_is_three_one_second_frames() -> None:
    board = plan_storyboard(3.0, tile_width=160, tile_height=90)
    assert board.interval == 1.0 and board.frames == 3
    assert [(t.start, t.end) for t in board.tiles] == [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)]
    # Three tiles in one row: the sheet is three tiles wide, not the default ten.
    assert [(s.columns, s.rows, s.width, s.height) for s in board.sheets] == [(3, 1, 480, 90)]


def test_two_hours_by_default_is_at_most_a_hundred_tiles() -> None:
    board = plan_storyboard(7200.0, tile_width=160, tile_height=90)
    assert board.interval == 72.0 and board.frames == 100
    assert [(s.columns, s.rows, s.width, s.height) for s in board.sheets] == [(10, 10, 1600, 900)]
    odd = plan_storyboard(7200.7, tile_width=160, tile_height=90)
    assert odd.frames == 100 and odd.tiles[-1].end == 7200.7


def test_default_interval_is_at_least_a_second() -> None:
    assert plan_storyboard(50.0, tile_width=10, tile_height=10).interval == 1.0
    assert plan_storyboard(50.0, tile_width=10, tile_height=10).frames == 50
    assert plan_storyboard(250.0, tile_width=10, tile_height=10).interval == 2.5


def test_count_and_interval() -> None:
    by_count = plan_storyboard(10.0, count=4, tile_width=10, tile_height=10)
    assert by_count.interval == 2.5 and by_count.frames == 4
    assert plan_storyboard(12.345678, count=7, tile_width=10, tile_height=10).frames == 7
    by_interval = plan_storyboard(12.0, interval=5.0, tile_width=10, tile_height=10)
    assert [(t.start, t.end) for t in by_interval.tiles] == [(0.0, 5.0), (5.0, 10.0), (10.0, 12.0)]
    longer = plan_storyboard(4.0, interval=30.0, tile_width=10, tile_height=10)
    assert [(t.start, t.end) for t in longer.tiles] == [(0.0, 4.0)]
    with pytest.raises(ValueError, match="not both"):
        plan_storyboard(10.0, count=2, interval=1.0, tile_width=10, tile_height=10)


def test_a_sub_millisecond_tail_stretches_the_last_tile() -> None:
    board = plan_storyboard(3.0004, tile_width=10, tile_height=10)
    assert board.frames == 3 and board.tiles[-1].start == 2.0 and board.tiles[-1].end == 3.0004
    assert plan_storyboard(3.002, tile_width=10, tile_height=10).frames == 4


def test_one_by_one_sheets() -> None:
    board = plan_storyboard(5.0, columns=1, rows=1, tile_width=160, tile_height=90)
    assert [(s.index, s.columns, s.rows, s.width, s.height) for s in board.sheets] == [
        (i, 1, 1, 160, 90) for i in range(5)
    ]
    assert [(t.sheet, t.x, t.y) for t in board.tiles] == [(i, 0, 0) for i in range(5)]


def test_tiles_fill_rows_and_the_last_sheet_gets_its_own_grid() -> None:
    board = plan_storyboard(12.0, columns=5, rows=2, tile_width=80, tile_height=45)
    assert [(s.columns, s.rows, s.width, s.height) for s in board.sheets] == [
        (5, 2, 400, 90),
        (2, 1, 160, 45),
    ]
    assert [(t.sheet, t.x, t.y) for t in board.tiles[4:7]] == [(0, 320, 0), (0, 0, 45), (0, 80, 45)]
    assert [(t.sheet, t.x, t.y) for t in board.tiles[10:]] == [(1, 0, 0), (1, 80, 0)]
    # 23 tiles on 10×2 sheets: the second sheet has 3 tiles, one row of three.
    sheets = plan_storyboard(23.0, columns=10, rows=2, tile_width=8, tile_height=8).sheets
    assert [(s.columns, s.rows) for s in sheets] == [(10, 2), (3, 1)]
    # 35 tiles: the last sheet has 15, so two rows of ten (five cells stay blank).
    last = plan_storyboard(35.0, columns=10, rows=2, tile_width=8, tile_height=8).sheets[-1]
    assert (last.columns, last.rows, last.width, last.height) == (10, 2, 80, 16)


def test_refusals() -> None:
    with pytest.raises(InputError, match="no duration"):
        plan_storyboard(0.0, tile_width=10, tile_height=10)
    with pytest.raises(InputError, match="ms apart"):
        plan_storyboard(5.0, count=10_000, tile_width=10, tile_height=10)
    with pytest.raises(InputError, match="pixels a side"):
        plan_storyboard(100.0, columns=20, tile_width=1000, tile_height=10)
    with pytest.raises(InputError, match="over the limit of 1,000 pixels"):
        plan_storyboard(100.0, tile_width=10, tile_height=10, max_pixels=1000)


def test_tile_size() -> None:
    assert tile_size(1920, 1080, None, None) == (160, 90)
    assert tile_size(1000, 333, None, None) == (160, 53)  # odd sides are fine for stills
    assert tile_size(1920, 1080, None, 45) == (80, 45)
    assert tile_size(1920, 1080, 100, 100) == (100, 100)


def test_vtt_text() -> None:
    board = plan_storyboard(3661.5, interval=3600.0, tile_width=160, tile_height=90)
    assert storyboard_vtt(board, sheet_name=lambda i: f"sheets/s{i}.webp") == (
        "WEBVTT\n\n"
        "00:00:00.000 --> 01:00:00.000\nsheets/s0.webp#xywh=0,0,160,90\n\n"
        "01:00:00.000 --> 01:01:01.500\nsheets/s0.webp#xywh=160,0,160,90\n"
    )


def test_json() -> None:
    board = plan_storyboard(12.0, interval=0.1, columns=10, rows=10, tile_width=16, tile_height=9)
    body = storyboard_json(board, sheet_urls=["a.jpg", "b.jpg"])
    assert body["tile_width"] == 16 and body["tile_height"] == 9
    assert body["sheets"] == [
        {"url": "a.jpg", "columns": 10, "rows": 10},
        {"url": "b.jpg", "columns": 10, "rows": 2},
    ]
    assert len(body["tiles"]) == 120
    assert body["tiles"][3] == {"start": 0.3, "end": 0.4, "sheet": 0, "x": 48, "y": 0}
    assert body["tiles"][-1] == {"start": 11.9, "end": 12.0, "sheet": 1, "x": 144, "y": 9}
    with pytest.raises(ValueError, match="2 sheets but 1 URLs"):
        storyboard_json(board, sheet_urls=["a.jpg"])


def test_argv_one_grid_needs_no_split() -> None:
    board = plan_storyboard(7200.0, tile_width=160, tile_height=90)
    argv = thumbnails_argv(["ffmpeg", "-i", "in.mp4"], "sprite_%d.jpg", board, format="jpeg", quality="high")
    graph = argv[argv.index("-filter_complex") + 1]
    assert "select='gte(t\\,selected_n*72/1)'" in graph and "fps=fps=1/72:round=down" in graph
    assert "trim=end_frame=100" in graph and graph.endswith("scale=160:90,tile=10x10[s0]")
    assert "split" not in graph
    assert argv[argv.index("-q:v") + 1] == "3"  # the quality table's MJPEG q:v for high
    assert argv[-5:] == ["-f", "image2", "-start_number", "0", "sprite_%d.jpg"]
    with pytest.raises(ValueError, match="%d"):
        thumbnails_argv([], "sprite.jpg", board, format="jpeg", quality=None)


def test_argv_last_sheet_gets_its_own_branch() -> None:
    board = plan_storyboard(59.94, interval=6.5, columns=2, rows=2, tile_width=16, tile_height=9)
    argv = thumbnails_argv(["ffmpeg"], "s_%d.webp", board, format="webp", quality=None)
    graph = argv[argv.index("-filter_complex") + 1]
    assert "fps=fps=2/13:" in graph and "selected_n*13/2" in graph
    assert graph.endswith(
        "split=2[b0][b1];[b0]trim=start_frame=0:end_frame=8,tile=2x2[s0];"
        "[b1]trim=start_frame=8:end_frame=10,tile=2x1[s1]"
    )
    starts = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-start_number"]
    # Sheets 0 and 1 from the first output, sheet 2 (the last 2 of 10 tiles) from the second.
    assert starts == ["0", "2"] and argv.count("libwebp") == 2


async def _run(clip: Path, board: Storyboard, out: Path, image_format: str) -> list[Path]:
    probed = await probe(clip)
    extension = SHEET_FORMATS[image_format][0]
    argv = thumbnails_argv(
        [*base_argv(FFMPEG), *input_args(clip, probed, 0.0, None)],
        str(out / f"sprite_%d.{extension}"),
        board,
        format=image_format,
        quality=None,
    )
    subprocess.run(argv, check=True, capture_output=True, timeout=60)
    return sorted(out.iterdir(), key=lambda p: int(p.stem.split("_")[1]))


@pytest.mark.parametrize("image_format", ["jpeg", "png", "webp"])
async def test_real_ffmpeg_writes_the_planned_sheets(tmp_path: Path, image_format: str) -> None:
    clip = tmp_path / "clip.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=160x90:rate=25:duration=12", *_X264, str(clip))
    probed = await probe(clip)
    assert probed.duration is not None and probed.video is not None
    width, height = tile_size(probed.video.display_width, probed.video.display_height, 80, None)
    # 13 frames, 5 per full sheet: two 5×1 sheets, then one of 3×1 from the second branch.
    board = plan_storyboard(
        probed.duration, count=13, columns=5, rows=1, tile_width=width, tile_height=height
    )
    out = tmp_path / "out"
    out.mkdir()
    sheets = await _run(clip, board, out, image_format)
    assert [p.name for p in sheets] == [f"sprite_{i}.{SHEET_FORMATS[image_format][0]}" for i in range(3)]
    sizes = [Image.open(p).size for p in sheets]
    assert sizes == [(s.width, s.height) for s in board.sheets] == [(400, 45), (400, 45), (240, 45)]


async def test_real_ffmpeg_takes_the_first_frame_at_or_after_each_start(tmp_path: Path) -> None:
    """A 2 fps clip whose frame N is grey level 16 + 10N, every 1.25 s: the frames at or after the
    starts are 0, 3, 5, 8 … (the frames on screen at them would be 0, 2, 5, 7 …)."""
    clip = tmp_path / "ramp.mkv"
    source = "color=c=black:s=32x18:r=2:d=10,format=yuv420p,geq=lum='16+10*N':cb=128:cr=128"
    _ffmpeg("-f", "lavfi", "-i", source, "-c:v", "ffv1", str(clip))
    probed = await probe(clip)
    assert probed.duration == 10.0
    board = plan_storyboard(probed.duration, interval=1.25, columns=3, rows=2, tile_width=32, tile_height=18)
    out = tmp_path / "out"
    out.mkdir()
    sheets = [Image.open(p).convert("L") for p in await _run(clip, board, out, "png")]
    assert [s.size for s in sheets] == [(96, 36), (64, 18)]
    levels = [_grey(sheets[t.sheet], (t.x + 16, t.y + 9)) for t in board.tiles]
    expected = [round((10 * n) * 255 / 219) for n in (0, 3, 5, 8, 10, 13, 15, 18)]
    assert all(abs(got - want) <= 3 for got, want in zip(levels, expected, strict=True)), levels


async def test_real_ffmpeg_fills_the_plan_when_the_video_ends_first(tmp_path: Path) -> None:
    """Audio 8 s, video 4 s: the plan follows the container's 8 s and the missing frames repeat the
    last picture, so the last sheet (its own grid, its own output) still exists at its size."""
    clip = tmp_path / "short_video.mp4"
    video, audio = "testsrc=size=160x90:rate=25:duration=4", "sine=duration=8"
    _ffmpeg("-f", "lavfi", "-i", video, "-f", "lavfi", "-i", audio, *_X264, "-c:a", "aac", str(clip))
    probed = await probe(clip)
    assert probed.duration is not None and probed.duration >= 8.0
    board = plan_storyboard(probed.duration, count=8, columns=3, rows=1, tile_width=40, tile_height=24)
    out = tmp_path / "out"
    out.mkdir()
    sheets = [Image.open(p) for p in await _run(clip, board, out, "png")]
    assert [s.size for s in sheets] == [(120, 24), (120, 24), (80, 24)]
    # The repeated last picture, not the black of an empty cell.
    assert ImageStat.Stat(sheets[-1].convert("L")).extrema[0][1] > 64
