"""``adaptive_video`` end to end, as a player sees it: through the gateway's signed folder links.

Every package is opened with ffprobe/ffmpeg over HTTP (the master playlist or the MPD, then every
rung), its playlists are checked against RFC 8216 and Apple's rules (``tests/support/playlists.py``),
and its segments are fetched one by one to check that every rung cuts at the same instants and that
every segment starts on a keyframe. All tasks are created up front by one module fixture.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from mpegdash.parser import MPEGDASHParser

from stack import Stack
from taskkit.storage import signing
from tests.conftest import create, run_all, wait_done
from tests.support import Corpus, Origin
from tests.support.corpus import FFMPEG, FFPROBE
from tests.support.playlists import Variant, check_master, check_media

FPS = 25
HD_SECONDS = 8
SRT = """1
00:00:00,500 --> 00:00:01,500
Hello from the subtitles

2
00:00:01,600 --> 00:00:03,000
A second cue
"""

# name -> (input: a corpus field or a module input, options)
SPECS: dict[str, tuple[str, dict[str, Any]]] = {
    "hls": ("hd", {"segment_duration": 4}),
    "dash": ("hd", {"format": "dash", "height": 360, "segment_duration": 2}),
    "cmaf": ("clip_av", {"format": "cmaf", "segment_duration": 2, "subtitles": "srt"}),
    "trim": ("hd", {"start": 2, "end": 6, "height": 240, "segment_duration": 2}),
    "audio_only": ("audio_stereo", {}),
    "no_audio": ("clip_silent", {}),
    "explicit": ("clip_av", {"renditions": [{"height": 144}, {"height": 240, "bitrate": 400_000}]}),
    "h265": ("clip_av", {"codec": "h265", "segment_duration": 2}),
    "av1": ("clip_av", {"codec": "av1", "segment_duration": 2}),
    "surround": ("clip_51", {}),
    "too_tall": ("clip_av", {"renditions": [{"height": 480}]}),
    "bad_subtitles": ("clip_av", {"subtitles": "png"}),
}


def _ffmpeg(*args: str) -> None:
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", *args], check=True, timeout=120)


@pytest.fixture(scope="module")
def hd(corpus: Corpus) -> Path:
    """8 s of 1280x720 at 25 fps with stereo audio: a 720p input (the automatic ladder's 4 rungs)."""
    path = corpus.root / "adaptive_hd.mp4"
    _ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate={FPS}:duration={HD_SECONDS}",
        "-f", "lavfi", "-i", f"sine=frequency=440:duration={HD_SECONDS}",
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "30", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-ac", "2", "-shortest", str(path),
    )  # fmt: skip
    return path


@pytest.fixture(scope="module")
def inputs(corpus: Corpus, hd: Path) -> dict[str, Path]:
    srt = corpus.root / "adaptive_subs.srt"
    srt.write_text(SRT)
    return {**corpus.files(), "hd": hd, "srt": srt, "png": corpus.files()["png_small"]}


@pytest.fixture(scope="module")
def tasks(api: httpx.Client, origin: Origin, inputs: dict[str, Path]) -> dict[str, dict[str, Any]]:
    specs = {}
    for name, (source, options) in SPECS.items():
        if "subtitles" in options:
            track = {
                "url": origin.url(inputs[options["subtitles"]].name),
                "label": "English",
                "language": "en",
            }
            options = {**options, "subtitles": [{**track, "default": True}]}
        specs[name] = (origin.url(inputs[source].name), options)
    return run_all(api, "adaptive_video", specs)


# --- helpers: a player's view of a package ------------------------------------------------------


def succeeded(task: dict[str, Any]) -> dict[str, Any]:
    assert task["status"] == "succeeded", task
    return task["outputs"][0]  # type: ignore[no-any-return]


def get(url: str) -> httpx.Response:
    response = httpx.get(url, timeout=30.0)
    assert response.status_code == 200, (url, response.status_code, response.text[:200])
    return response


def sibling(url: str, name: str) -> str:
    """``name`` resolved against ``url`` as a player resolves a playlist's relative references."""
    return str(httpx.URL(url).join(name))


def ffprobe(url: str, *args: str) -> dict[str, Any]:
    out = subprocess.run(
        [FFPROBE, "-v", "error", "-of", "json", *args, url], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def decoded_frames(url: str, stream: str = "v:0") -> int:
    """Decode the whole stream (ffprobe -count_frames) and return how many frames it had."""
    info = ffprobe(url, "-count_frames", "-select_streams", stream, "-show_entries", "stream=nb_read_frames")
    return int(info["streams"][0]["nb_read_frames"])


def master(entry: dict[str, Any]) -> tuple[list[Variant], list[dict[str, str]]]:
    return check_master(get(entry["url"]).text)


def keyframe_times(init: bytes, segment: bytes, dest: Path) -> list[float]:
    """Presentation times of the keyframes of one fMP4 segment, and of its first packet first."""
    dest.write_bytes(init + segment)
    info = ffprobe(
        str(dest), "-select_streams", "v:0", "-show_entries", "packet=pts_time,flags", "-show_packets"
    )
    packets = info["packets"]
    assert packets, "a segment without video packets"
    assert "K" in packets[0]["flags"], "a segment must start with a keyframe"
    return [float(p["pts_time"]) for p in packets if "K" in p["flags"]]


def segment_cuts(url: str, dest: Path) -> tuple[list[float], list[float]]:
    """(EXTINF durations, keyframe times) of one video rung, segment by segment."""
    media = check_media(get(url).text)
    init = get(sibling(url, media.map_uri)).content
    keyframes: list[float] = []
    for i, (uri, _) in enumerate(media.segments):
        keyframes += keyframe_times(init, get(sibling(url, uri)).content, dest / f"seg{i}.mp4")
    return [seconds for _, seconds in media.segments], keyframes


# --- the automatic ladder over HLS --------------------------------------------------------------


def test_a_720p_input_gives_the_documented_ladder(tasks: dict[str, dict[str, Any]]) -> None:
    entry = succeeded(tasks["hls"])
    assert entry["type"] == "application/vnd.apple.mpegurl"
    assert (entry["width"], entry["height"]) == (1280, 720)
    assert entry["duration"] == pytest.approx(HD_SECONDS, abs=0.05)
    videos = [r for r in entry["renditions"] if r["type"] == "video"]
    assert [(r["width"], r["height"]) for r in videos] == [(1280, 720), (960, 540), (640, 360), (426, 240)]
    # Apple's table at medium quality, measured on the segments (VBR settles within a quarter).
    for rendition, target in zip(videos, (3_000_000, 2_000_000, 730_000, 365_000), strict=True):
        assert 0.75 * target <= rendition["bitrate"] <= 1.25 * target, rendition
    (audio,) = [r for r in entry["renditions"] if r["type"] == "audio"]
    assert audio["codec"] == "mp4a.40.2" and 100_000 <= audio["bitrate"] <= 160_000


def test_master_playlist_follows_the_rules(tasks: dict[str, dict[str, Any]]) -> None:
    variants, media = master(succeeded(tasks["hls"]))
    assert [v.attrs["RESOLUTION"] for v in variants] == ["1280x720", "960x540", "640x360", "426x240"]
    (audio,) = [m for m in media if m["TYPE"] == "AUDIO"]
    for variant in variants:
        assert variant.attrs["FRAME-RATE"] == "25.000"
        assert variant.attrs["AUDIO"] == audio["GROUP-ID"]
        video_codec, audio_codec = variant.attrs["CODECS"].split(",")
        assert video_codec.startswith("avc1.64"), "H.264 High profile, read from the bitstream"
        assert int(video_codec[-2:], 16) <= 42, "level 4.2 at most"
        assert audio_codec == "mp4a.40.2"


def test_ffprobe_opens_the_master_and_every_rung_decodes(tasks: dict[str, dict[str, Any]]) -> None:
    entry = succeeded(tasks["hls"])
    info = ffprobe(entry["url"], "-show_entries", "stream=codec_type,height")
    heights = sorted({s["height"] for s in info["streams"] if s["codec_type"] == "video"})
    assert heights == [240, 360, 540, 720]
    variants, media = master(entry)
    for variant in variants:
        assert decoded_frames(sibling(entry["url"], variant.uri)) == HD_SECONDS * FPS
    (audio,) = [m for m in media if m["TYPE"] == "AUDIO"]
    assert decoded_frames(sibling(entry["url"], audio["URI"]), "a:0") > 0


def test_media_playlists_sum_to_the_duration(tasks: dict[str, dict[str, Any]]) -> None:
    entry = succeeded(tasks["hls"])
    variants, media = master(entry)
    for variant in variants:
        playlist = check_media(
            get(sibling(entry["url"], variant.uri)).text, duration=HD_SECONDS, frame=1 / FPS
        )
        assert playlist.target == 4 and playlist.version >= 6
    (audio,) = [m for m in media if m["TYPE"] == "AUDIO"]
    check_media(get(sibling(entry["url"], audio["URI"])).text, duration=HD_SECONDS, frame=0.05)


def test_every_rung_cuts_at_the_same_keyframes(tasks: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    """Segments line up across rungs, each starts on a keyframe, and keyframes fall every 2 s."""
    entry = succeeded(tasks["hls"])
    variants, _ = master(entry)
    cuts = [segment_cuts(sibling(entry["url"], v.uri), tmp_path) for v in variants]
    durations, keyframes = cuts[0]
    assert durations == [4.0, 4.0]
    assert keyframes == pytest.approx([0.0, 2.0, 4.0, 6.0], abs=0.5 / FPS)
    for other in cuts[1:]:
        assert other == cuts[0]


# --- DASH and CMAF ------------------------------------------------------------------------------


def test_dash_mpd_parses_and_decodes(tasks: dict[str, dict[str, Any]]) -> None:
    entry = succeeded(tasks["dash"])
    assert entry["type"] == "application/dash+xml" and entry["url"].endswith("/manifest.mpd")
    mpd = MPEGDASHParser.parse(get(entry["url"]).text)
    (period,) = mpd.periods
    sets = {s.content_type: s for s in period.adaptation_sets}
    assert set(sets) == {"video", "audio"}
    for aset in sets.values():
        assert aset.segment_alignment is True and int(aset.start_with_sap) == 1
    assert [r.height for r in sets["video"].representations] == [360, 240]
    assert all(r.codecs.startswith("avc1.64") for r in sets["video"].representations)
    info = ffprobe(entry["url"], "-show_entries", "stream=codec_type,height")
    assert sorted(s["height"] for s in info["streams"] if s["codec_type"] == "video") == [240, 360]
    assert decoded_frames(entry["url"]) == HD_SECONDS * FPS
    assert httpx.get(sibling(entry["url"], "master.m3u8")).status_code == 404, "dash has no HLS playlists"


def test_cmaf_serves_hls_and_dash_from_one_set_of_segments(tasks: dict[str, dict[str, Any]]) -> None:
    task = tasks["cmaf"]
    hls, dash = task["outputs"]
    assert (hls["type"], dash["type"]) == ("application/vnd.apple.mpegurl", "application/dash+xml")
    assert hls["url"].rsplit("/", 1)[0].split("/")[-2:] == dash["url"].rsplit("/", 1)[0].split("/")[-2:]
    variants, _ = master(hls)
    hls_segments = {
        uri for v in variants for uri, _ in check_media(get(sibling(hls["url"], v.uri)).text).segments
    }
    mpd = get(dash["url"]).text
    template = 'media="seg-$RepresentationID$-$Number%05d$.m4s"'
    assert template in mpd, "the MPD names the very segment files the HLS playlists list"
    assert all(httpx.get(sibling(dash["url"], uri)).status_code == 200 for uri in hls_segments)
    assert decoded_frames(hls["url"]) == decoded_frames(dash["url"]) == 2 * FPS


def test_subtitles_are_a_rendition_in_hls_and_dash(tasks: dict[str, dict[str, Any]]) -> None:
    hls, dash = tasks["cmaf"]["outputs"]
    variants, media = master(hls)
    (subs,) = [m for m in media if m["TYPE"] == "SUBTITLES"]
    assert (subs["LANGUAGE"], subs["NAME"], subs["DEFAULT"]) == ("en", "English", "YES")
    assert all(v.attrs["SUBTITLES"] == subs["GROUP-ID"] for v in variants)
    playlist = get(sibling(hls["url"], subs["URI"])).text
    assert "#EXT-X-ENDLIST" in playlist
    vtt_name = next(line for line in playlist.splitlines() if line and not line.startswith("#"))
    vtt = get(sibling(hls["url"], vtt_name)).text
    assert vtt.startswith("WEBVTT") and "00:00:00.500 --> 00:00:01.500\nHello from the subtitles" in vtt
    mpd = MPEGDASHParser.parse(get(dash["url"]).text)
    (text,) = [s for s in mpd.periods[0].adaptation_sets if s.content_type == "text"]
    assert text.mime_type == "text/vtt" and text.lang == "en"
    assert [r for r in hls["renditions"] if r["type"] == "subtitles"] == [
        {"type": "subtitles", "codec": "wvtt", "language": "en", "label": "English"}
    ]


# --- inputs and options -------------------------------------------------------------------------


def test_start_and_end_cut_the_package(tasks: dict[str, dict[str, Any]]) -> None:
    entry = succeeded(tasks["trim"])
    assert entry["duration"] == pytest.approx(4.0, abs=0.05)
    assert entry["height"] == 240 and len(entry["renditions"]) == 2  # 240p video + audio
    variants, _ = master(entry)
    check_media(get(sibling(entry["url"], variants[0].uri)).text, duration=4.0, frame=1 / FPS)


def test_audio_only_input_gives_an_audio_only_package(tasks: dict[str, dict[str, Any]]) -> None:
    entry = succeeded(tasks["audio_only"])
    assert "width" not in entry or entry["width"] is None
    assert [r["type"] for r in entry["renditions"]] == ["audio"]
    variants, media = master(entry)
    (variant,) = variants
    assert variant.attrs["CODECS"] == "mp4a.40.2" and "RESOLUTION" not in variant.attrs
    assert media == []
    assert decoded_frames(sibling(entry["url"], variant.uri), "a:0") > 0


def test_video_without_audio_has_no_audio_group(tasks: dict[str, dict[str, Any]]) -> None:
    entry = succeeded(tasks["no_audio"])
    variants, media = master(entry)
    assert media == [] and len(variants) == 1, "a 240p input gives one rung"
    assert "AUDIO" not in variants[0].attrs and "mp4a" not in variants[0].attrs["CODECS"]
    assert [r["type"] for r in entry["renditions"]] == ["video"]


def test_explicit_renditions_replace_the_ladder(tasks: dict[str, dict[str, Any]]) -> None:
    entry = succeeded(tasks["explicit"])
    videos = [r for r in entry["renditions"] if r["type"] == "video"]
    assert [(r["width"], r["height"]) for r in videos] == [(320, 240), (192, 144)]
    assert 300_000 <= videos[0]["bitrate"] <= 500_000
    variants, _ = master(entry)
    assert [v.attrs["RESOLUTION"] for v in variants] == ["320x240", "192x144"]


@pytest.mark.parametrize(("name", "prefix"), [("h265", "hvc1.1.6.L"), ("av1", "av01.0.")])
def test_h265_and_av1_packages_carry_full_codec_strings(
    tasks: dict[str, dict[str, Any]], name: str, prefix: str
) -> None:
    entry = succeeded(tasks[name])
    variants, _ = master(entry)
    assert variants[0].attrs["CODECS"].startswith(prefix), variants[0].attrs
    assert decoded_frames(sibling(entry["url"], variants[0].uri)) == 2 * FPS


def test_surround_audio_is_downmixed_to_stereo(tasks: dict[str, dict[str, Any]]) -> None:
    entry = succeeded(tasks["surround"])
    _, media = master(entry)
    (audio,) = media
    assert audio["CHANNELS"] == "2"
    info = ffprobe(sibling(entry["url"], audio["URI"]), "-show_entries", "stream=channels")
    assert info["streams"][0]["channels"] == 2


def test_a_rung_taller_than_the_input_fails_the_task(tasks: dict[str, dict[str, Any]]) -> None:
    task = tasks["too_tall"]
    assert task["status"] == "failed"
    assert task["error"] == (
        "options.renditions asks for 480p, taller than the 240-pixel-high picture "
        "(adaptive_video never upscales)"
    )


def test_a_subtitles_file_that_is_not_subtitles_fails_the_task(tasks: dict[str, dict[str, Any]]) -> None:
    task = tasks["bad_subtitles"]
    assert task["status"] == "failed"
    assert task["error"] == ("the subtitles file of options.subtitles[0] is not UTF-8 text")


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"format": "mp4"}, "hls, dash, cmaf"),
        ({"codec": "vp9"}, "h264, h265, av1"),
        ({"segment_duration": 1}, "from 2 to 10"),
        ({"renditions": [{"height": 240}, {"height": 240}]}, "same height twice"),
        ({"subtitles": [{"url": "file:///etc/passwd"}]}, "http or https"),
    ],
)
def test_bad_options_are_400s_naming_the_field(
    api: httpx.Client, origin: Origin, inputs: dict[str, Path], options: dict[str, Any], fragment: str
) -> None:
    response = api.post(
        "/tasks", json={"kind": "adaptive_video", "url": origin.url(inputs["hd"].name), "options": options}
    )
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["kind"] == "request_invalid" and fragment in body["message"], body


# --- links and cancel ---------------------------------------------------------------------------


def _tampered(url: str) -> str:
    """The same link with one character of its signature changed."""
    parts = url.split("/")
    sig_index = parts.index("files") + 2
    parts[sig_index] = ("A" if parts[sig_index][0] != "A" else "B") + parts[sig_index][1:]
    return "/".join(parts)


def test_tampered_or_expired_package_links_are_403(tasks: dict[str, dict[str, Any]], stack: Stack) -> None:
    entry = succeeded(tasks["hls"])
    variants, _ = master(entry)
    segment = sibling(
        entry["url"], check_media(get(sibling(entry["url"], variants[0].uri)).text).segments[0][0]
    )
    get(segment)  # the folder grant reaches the segments
    for url in (entry["url"], sibling(entry["url"], variants[0].uri), segment):
        assert httpx.get(_tampered(url)).status_code == 403
    key = "/".join(httpx.URL(segment).path.split("/")[4:])
    folder = key.rsplit("/", 1)[0]
    expired = signing.signed_path(
        stack.config.signing_secret, key, expiry=int(time.time()) - 10, prefix=folder
    )
    assert httpx.get(stack.base_url + expired).status_code == 403
    fresh = signing.signed_path(stack.config.signing_secret, key, expiry=int(time.time()) + 60, prefix=folder)
    assert httpx.get(stack.base_url + fresh).status_code == 200  # the same grant, unexpired: served


@pytest.fixture(scope="module")
def long_hd(corpus: Corpus) -> Path:
    """60 s of 720p, under the test stack's 5 MB input limit: a cancel lands mid-encode."""
    path = corpus.root / "adaptive_long.mp4"
    _ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25:duration=60",
        "-f", "lavfi", "-i", "sine=frequency=440:duration=60",
        "-c:v", "libx264", "-preset", "ultrafast", "-crf", "51", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "32k", "-ac", "2", "-shortest", str(path),
    )  # fmt: skip
    return path


def _ffmpeg_running_for(task_id: str) -> bool:
    out = subprocess.run(["pgrep", "-f", f"{task_id}-"], capture_output=True, text=True)
    return bool(out.stdout.strip())


def test_cancel_mid_package_stops_ffmpeg_and_leaves_no_files(
    api: httpx.Client, origin: Origin, long_hd: Path, stack: Stack, tasks: dict[str, dict[str, Any]]
) -> None:
    task = create(api, "adaptive_video", origin.url(long_hd.name), segment_duration=2)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        seen = api.get(f"/tasks/{task['id']}").json()
        if (seen.get("progress") or 0) > 0:
            break
        time.sleep(0.1)
    assert seen["status"] == "processing", (seen["status"], seen.get("error"))
    assert _ffmpeg_running_for(task["id"])
    cancelled_at = time.monotonic()
    assert api.post(f"/tasks/{task['id']}/cancel").status_code == 200
    while _ffmpeg_running_for(task["id"]) and time.monotonic() - cancelled_at < 5:
        time.sleep(0.05)
    assert time.monotonic() - cancelled_at < 2.0, "ffmpeg must stop within 2 s of the cancel"
    final = wait_done(api, task["id"])
    assert final["status"] == "cancelled" and final["outputs"] == []
    time.sleep(0.5)
    stored = stack.config.root / "storage" / "default" / task["id"]
    assert not stored.exists() or not any(stored.rglob("*")), "no partial package is visible"
