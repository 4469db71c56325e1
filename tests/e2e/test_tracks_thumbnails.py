"""``thumbnails`` end to end, as a player reads a storyboard: the WebVTT through its signed link,
each ``sprite_N#xywh=`` resolved against that link and checked against the real sheet's pixels.

All tasks are created up front by one module fixture; the inputs are generated small and fast
(a 2-hour video is 64x36 at one frame a second).
"""

from __future__ import annotations

import io
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.conftest import run_all
from tests.support import Corpus, Origin
from tests.support.corpus import FFMPEG
from tests.support.errors import assert_error
from tests.support.storyboards import TileCue, check_storyboard, parse_storyboard_vtt

TWO_HOURS = 7200

# name -> (input, options)
SPECS: dict[str, tuple[str, dict[str, Any]]] = {
    "three_seconds": ("three_seconds", {}),
    "two_hours": ("two_hours", {}),
    "png_count": ("three_seconds", {"format": "png", "count": 7, "columns": 4, "rows": 1}),
    "webp_half": ("three_seconds", {"format": "webp", "width": "50%", "interval": 0.5}),
    "rotated": ("clip_rotated", {"height": 80}),
    "two_hours_too_dense": ("two_hours", {"interval": 0.1}),
    "audio_only": ("audio_stereo", {}),
    "image": ("png_small", {}),
}


def _ffmpeg(*args: str) -> None:
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", *args], check=True, timeout=120)


@pytest.fixture(scope="module")
def inputs(corpus: Corpus) -> dict[str, Path]:
    three, two_hours = corpus.root / "thumbs_3s.mp4", corpus.root / "thumbs_2h.mp4"
    _ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=3",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(three),
    )  # fmt: skip
    _ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=size=64x36:rate=1:duration={TWO_HOURS}",
        "-c:v", "libx264", "-preset", "ultrafast", "-g", "600", "-pix_fmt", "yuv420p", str(two_hours),
    )  # fmt: skip
    return {**corpus.files(), "three_seconds": three, "two_hours": two_hours}


@pytest.fixture(scope="module")
def tasks(api: httpx.Client, origin: Origin, inputs: dict[str, Path]) -> dict[str, dict[str, Any]]:
    specs = {name: (origin.url(inputs[source].name), options) for name, (source, options) in SPECS.items()}
    return run_all(api, "thumbnails", specs)


def get(url: str) -> httpx.Response:
    response = httpx.get(url, timeout=30.0)
    assert response.status_code == 200, (url, response.status_code, response.text[:200])
    return response


def storyboard(task: dict[str, Any]) -> tuple[list[TileCue], dict[str, Image.Image], dict[str, Any]]:
    """The task's cues, its sheets fetched through the VTT's link as a player resolves them, and
    the JSON storyboard; the outputs' sizes are checked against the sheets' real pixels."""
    assert task["status"] == "succeeded", task
    vtt, json_entry, *sheet_entries = task["outputs"]
    assert (vtt["kind"], vtt["type"], json_entry["type"]) == ("track", "text/vtt", "application/json")
    cues = parse_storyboard_vtt(get(vtt["url"]).text)
    sheets: dict[str, Image.Image] = {}
    for name in sorted({cue.sheet for cue in cues}):
        sheets[name] = Image.open(io.BytesIO(get(str(httpx.URL(vtt["url"]).join(name))).content))
    assert [(e["kind"], e["width"], e["height"]) for e in sheet_entries] == [
        ("source", image.width, image.height) for image in sheets.values()
    ]
    for entry in task["outputs"]:  # each file's own size, not the folder's
        assert entry["filesize"] == len(get(entry["url"]).content)
    return cues, sheets, get(json_entry["url"]).json()


def check(task: dict[str, Any], cues: list[TileCue], sheets: dict[str, Image.Image]) -> None:
    tile = (cues[0].w, cues[0].h)
    sizes = {name: image.size for name, image in sheets.items()}
    assert check_storyboard(cues, duration=task["outputs"][0]["duration"], sheets=sizes, tile=tile) == []


def test_a_three_second_video_gets_a_tile_a_second(tasks: dict[str, dict[str, Any]]) -> None:
    task = tasks["three_seconds"]
    cues, sheets, _ = storyboard(task)
    check(task, cues, sheets)
    assert [(c.start, c.end) for c in cues] == [(0, 1), (1, 2), (2, 3)]
    assert (cues[0].w, cues[0].h) == (160, 90)  # 160 wide by default, the aspect kept
    assert {name: image.size for name, image in sheets.items()} == {"sprite_0.jpg": (480, 90)}
    assert task["outputs"][2]["type"] == "image/jpeg"
    # Frame i is taken at or after i seconds: testsrc2's picture moves, so the tiles differ.
    (sheet,) = sheets.values()
    tiles = [sheet.crop((c.x, c.y, c.x + c.w, c.y + c.h)).tobytes() for c in cues]
    assert len(set(tiles)) == 3


def test_json_storyboard_matches_the_vtt(tasks: dict[str, dict[str, Any]]) -> None:
    cues, _, board = storyboard(tasks["three_seconds"])
    assert (board["tile_width"], board["tile_height"]) == (160, 90)
    assert board["sheets"] == [{"url": "sprite_0.jpg", "columns": 3, "rows": 1}]
    assert [(t["start"], t["end"], t["sheet"], t["x"], t["y"]) for t in board["tiles"]] == [
        (c.start, c.end, 0, c.x, c.y) for c in cues
    ]


def test_two_hours_stay_at_a_hundred_tiles_by_default(tasks: dict[str, dict[str, Any]]) -> None:
    task = tasks["two_hours"]
    cues, sheets, _ = storyboard(task)
    check(task, cues, sheets)
    assert len(cues) == 100 and cues[1].start == TWO_HOURS / 100
    assert {name: image.size for name, image in sheets.items()} == {"sprite_0.jpg": (1600, 900)}


def test_png_with_a_count_puts_the_rest_on_a_sheet_of_its_own(tasks: dict[str, dict[str, Any]]) -> None:
    task = tasks["png_count"]
    cues, sheets, board = storyboard(task)
    check(task, cues, sheets)
    assert len(cues) == 7
    assert {name: image.size for name, image in sheets.items()} == {
        "sprite_0.png": (640, 90),
        "sprite_1.png": (480, 90),
    }
    assert [s["columns"] for s in board["sheets"]] == [4, 3]
    assert all(image.format == "PNG" for image in sheets.values())


def test_webp_at_half_the_input_width(tasks: dict[str, dict[str, Any]]) -> None:
    task = tasks["webp_half"]
    cues, sheets, _ = storyboard(task)
    check(task, cues, sheets)
    assert len(cues) == 6 and (cues[0].w, cues[0].h) == (160, 90)
    assert all(image.format == "WEBP" for image in sheets.values())


def test_rotated_input_gets_upright_tiles(tasks: dict[str, dict[str, Any]]) -> None:
    cues, sheets, _ = storyboard(tasks["rotated"])
    check(tasks["rotated"], cues, sheets)
    assert cues[0].h == 80 and cues[0].w < cues[0].h  # the clip is stored landscape, shown portrait


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("audio_only", "the input has no video to take thumbnails of"),
        ("image", "the input has no video to take thumbnails of"),
        ("two_hours_too_dense", "thumbnails every 0.1 s over 7200 s would be 72,000 frames"),
    ],
)
def test_inputs_without_thumbnails_fail_with_one_sentence(
    tasks: dict[str, dict[str, Any]], name: str, error: str
) -> None:
    task = tasks[name]
    assert task["status"] == "failed" and task["error"].startswith(error), task
    assert task["outputs"] == []


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"interval": 2, "count": 5}, "options.interval and options.count"),
        ({"columns": 0}, "options.columns"),
        ({"count": 10_001}, "options.count"),
        ({"format": "gif"}, "options.format"),
        ({"width": "0%"}, "options.width"),
        ({"interval": "1"}, "options.interval"),
    ],
)
def test_bad_options_are_400(api: httpx.Client, origin: Origin, options: dict[str, Any], field: str) -> None:
    response = api.post("/tasks", json={"kind": "thumbnails", "url": origin.url("x.mp4"), "options": options})
    assert_error(response, 400, "request_invalid", field)
