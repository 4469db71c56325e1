"""The pure parts of ``adaptive_video``: options, the ladder rule, the argv and filter graph, the
subtitles parser, the playlist/MPD writers, the HEVC codec string — and the playlist checks the
e2e tests lean on, which must themselves fail on bad playlists.

The writers are fed what a real (tiny) ffmpeg DASH run wrote, so they are tested on ffmpeg's real
MPD rather than on a hand-written one.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from mpegdash.parser import MPEGDASHParser

from media_service import adaptive_argv, packaging, subtitles
from media_service.adaptive import plan
from media_service.codec_strings import hevc_codec_string
from media_service.ladder import Rung, automatic_heights, build_ladder, table_bitrate
from media_service.options import RungSpec, SubtitleSpec, parse_adaptive_options
from taskkit.errors import InputError, InvalidRequest
from taskkit.media import Layout, ProbeResult
from taskkit.media.probe import AudioStream, VideoStream, probe_container
from tests.support.corpus import FFMPEG
from tests.support.playlists import check_master, check_media, parse_attrs


def probe_of(width: int = 1280, height: int = 720, *, audio: bool = True, video: bool = True) -> ProbeResult:
    return ProbeResult(
        format_name="mov,mp4,m4a,3gp,3g2,mj2",
        mime_type="video/mp4",
        duration=8.0,
        size=1000,
        video=VideoStream("h264", width, height, 25.0, 0) if video else None,
        audio=AudioStream("aac", 6, 48000) if audio else None,
    )


# --- options --------------------------------------------------------------------------------------


def test_defaults() -> None:
    opts = parse_adaptive_options({})
    assert (opts.format, opts.codec, opts.segment_duration, opts.renditions, opts.subtitles) == (
        "hls",
        "h264",
        6.0,
        None,
        (),
    )


LONG_TRACKS = [{"url": "https://x/a.srt", "default": True}, {"url": "https://x/b.srt", "default": True}]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"format": "mp4"}, 'options.format must be one of hls, dash, cmaf (got "mp4").'),
        ({"codec": "vp9"}, 'options.codec must be one of h264, h265, av1 (got "vp9").'),
        ({"segment_duration": 11}, "options.segment_duration must be a number of seconds from 2 to 10"),
        ({"renditions": []}, "options.renditions must be a list of 1 to 8 objects (got 0)."),
        (
            {"renditions": [{"height": 100}]},
            "options.renditions[0].height must be an integer from 144 to 2160",
        ),
        ({"renditions": [{"height": 240, "fps": 30}]}, "options.renditions[0].fps is not a known field"),
        ({"renditions": [{"bitrate": 100_000}]}, "options.renditions[0].height is required."),
        (
            {"renditions": [{"height": 240}, {"height": 241}]},
            "options.renditions lists the same height twice",
        ),
        ({"subtitles": [{"url": "ftp://x/y.srt"}]}, "options.subtitles[0].url must be an http or https URL"),
        (
            {"subtitles": [{"url": "https://x/y", "language": "en!"}]},
            "options.subtitles[0].language must be a",
        ),
        ({"subtitles": LONG_TRACKS}, "options.subtitles: at most one track can be the default."),
        ({"bitrate": 1000}, "options.bitrate is not a known option"),
    ],
)
def test_bad_options_name_the_field(options: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_adaptive_options(options)
    assert caught.value.message.startswith(message), caught.value.message


def test_renditions_are_sorted_tallest_first_and_labels_default() -> None:
    opts = parse_adaptive_options(
        {
            "renditions": [{"height": 240}, {"height": 481, "bitrate": 900_000}],
            "subtitles": [{"url": "https://x/a.vtt", "language": "pt-BR"}, {"url": "https://x/b.vtt"}],
        }
    )
    assert opts.renditions == (RungSpec(height=480, bitrate=900_000), RungSpec(height=240, bitrate=None))
    assert [(s.label, s.language, s.default) for s in opts.subtitles] == [
        ("pt-BR", "pt-BR", False),
        ("Subtitles 2", None, False),
    ]


# --- the ladder -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("top", "heights"),
    [
        (1080, [1080, 720, 540, 360, 240]),
        (720, [720, 540, 360, 240]),
        (600, [600, 360, 240]),  # 540 is over 80 % of 600: too close to be worth a switch
        (480, [480, 360, 240]),
        (300, [300, 240]),
        (240, [240]),
        (200, [200]),
    ],
)
def test_automatic_heights_drop_rungs_too_close_to_the_one_above(top: int, heights: list[int]) -> None:
    assert automatic_heights(top) == heights


def test_a_720p_ladder_has_apples_bitrates_and_keeps_the_aspect() -> None:
    rungs = build_ladder(1280, 720, quality="medium", codec="h264")
    assert rungs == [
        Rung(1280, 720, 3_000_000),
        Rung(960, 540, 2_000_000),
        Rung(640, 360, 730_000),
        Rung(426, 240, 365_000),
    ]


def test_bitrates_scale_with_quality_and_codec_and_interpolate_between_rows() -> None:
    assert table_bitrate(480) == round(730_000 + (120 / 180) * (2_000_000 - 730_000))
    assert table_bitrate(2160) == 6_000_000
    high = build_ladder(1280, 720, quality="high", codec="h265")
    assert high[0].bitrate == round(3_000_000 * 1.25 * 0.65 / 1000) * 1000
    assert build_ladder(256, 144, quality="very_low", codec="av1")[0].bitrate == 100_000  # the floor


def test_explicit_renditions_replace_the_ladder_and_take_table_bitrates() -> None:
    explicit = (RungSpec(480, None), RungSpec(144, 200_000))
    assert build_ladder(854, 480, quality="medium", codec="h264", explicit=explicit) == [
        Rung(854, 480, 1_577_000),  # interpolated between 540p and 360p, rounded to kb/s
        Rung(256, 144, 200_000),
    ]


def test_an_explicit_rung_taller_than_the_picture_is_refused() -> None:
    with pytest.raises(InputError) as caught:
        build_ladder(320, 240, quality="medium", codec="h264", explicit=(RungSpec(480, None),))
    assert caught.value.message == (
        "options.renditions asks for 480p, taller than the 240-pixel-high picture "
        "(adaptive_video never upscales)"
    )


def test_plan_caps_the_top_at_1080_and_never_upscales() -> None:
    layout, rungs = plan(parse_adaptive_options({}), probe_of(3840, 2160))
    assert layout is not None and (layout.width, layout.height) == (1920, 1080)
    assert [r.height for r in rungs] == [1080, 720, 540, 360, 240]
    with pytest.raises(InputError, match="never upscales"):
        plan(parse_adaptive_options({"height": 1080}), probe_of(1280, 720))
    layout, rungs = plan(parse_adaptive_options({"height": 360}), probe_of(1280, 720))
    assert [(r.width, r.height) for r in rungs] == [(640, 360), (426, 240)]


def test_plan_bounds_the_top_rung_by_the_pixel_limit() -> None:
    # Never taller than the input, but wider is allowed: 16000x4096 is 65.5 Mpx.
    wide = parse_adaptive_options({"width": 16000, "height": "100%"})
    for kwargs in ({}, {"max_pixels": 64_000_000}):  # the settings' default when none is given
        with pytest.raises(InputError) as caught:
            plan(wide, probe_of(640, 4096), **kwargs)
        assert caught.value.message == (
            "the output would be 16000×4096 pixels (65,536,000), over the limit of 64,000,000 pixels"
        )
    # Exactly at the (configured) limit is allowed; every lower rung is smaller.
    layout, rungs = plan(parse_adaptive_options({}), probe_of(1280, 720), max_pixels=1280 * 720)
    assert layout is not None and (layout.width, layout.height) == (1280, 720)
    assert all(rung.width * rung.height <= 1280 * 720 for rung in rungs)
    with pytest.raises(InputError, match="over the limit of 921,599 pixels"):
        plan(parse_adaptive_options({}), probe_of(1280, 720), max_pixels=1280 * 720 - 1)
    # cover scales the picture past the top rung's box before cropping it: that is bounded too.
    cover = parse_adaptive_options({"width": "1000%", "height": "100%", "fit": "cover"})
    with pytest.raises(InputError) as caught:
        plan(cover, probe_of(1280, 720))
    assert caught.value.message == (
        "with fit cover the picture would be scaled to 12800×7200 pixels (92,160,000) before its crop "
        "to 12800×720, over the limit of 64,000,000 pixels"
    )


def test_plan_for_audio_only_and_for_inputs_it_cannot_package() -> None:
    assert plan(parse_adaptive_options({}), probe_of(video=False)) == (None, [])
    with pytest.raises(InputError, match="needs a video input"):
        plan(parse_adaptive_options({"renditions": [{"height": 240}]}), probe_of(video=False))
    with pytest.raises(InputError, match="neither video nor audio"):
        plan(parse_adaptive_options({}), probe_of(video=False, audio=False))
    with pytest.raises(InputError, match="av1 needs at least 64"):
        plan(parse_adaptive_options({"codec": "av1"}), probe_of(80, 48))


# --- keyframes, the filter graph and the argv -----------------------------------------------------


@pytest.mark.parametrize(
    ("segment", "interval"), [(2, 2.0), (4, 2.0), (6, 2.0), (3, 1.5), (5, 5 / 3), (10, 2.0)]
)
def test_the_keyframe_interval_divides_the_segment_and_is_at_most_2s(segment: float, interval: float) -> None:
    assert adaptive_argv.keyframe_interval(segment) == pytest.approx(interval)
    assert (segment / interval) == pytest.approx(round(segment / interval))


def test_the_filter_graph_splits_one_decode_into_every_rung() -> None:
    rungs = [Rung(1280, 720, 3_000_000), Rung(426, 240, 365_000)]
    graph = adaptive_argv.filter_graph(rungs, Layout("fill", 1280, 720, 1280, 720), None, 25.0)
    head, top, low = graph.split(";")
    assert head.startswith("[0:v]fps=25,") and head.endswith("split=2[s0][s1]")
    assert top == "[s0]format=yuv420p[v0]"
    # 426x240 is not exactly 16:9; the pixel aspect 640/639 makes its display aspect the top's.
    assert low == "[s1]scale=426:240:flags=bicubic,setsar=sar=640/639:max=65535,format=yuv420p[v1]"


def _argv(options: dict[str, Any], probe: ProbeResult) -> list[str]:
    opts = parse_adaptive_options(options)
    layout, rungs = plan(opts, probe)
    return adaptive_argv.build_adaptive_argv(Path("/in/src.mp4"), Path("/out"), opts, probe, rungs, layout)


def after(argv: list[str], flag: str) -> str:
    """The value following ``flag`` (the last occurrence: an input's ``-f`` comes first)."""
    return argv[len(argv) - argv[::-1].index(flag)]


def test_h264_argv_forces_identical_keyframes_on_every_rung() -> None:
    argv = _argv({"segment_duration": 4}, probe_of(1280, 720))
    assert after(argv, "-c:v") == "libx264" and after(argv, "-profile:v") == "high"
    assert after(argv, "-g") == after(argv, "-keyint_min") == "50"  # 2 s at 25 fps
    assert after(argv, "-sc_threshold") == "0" and after(argv, "-x264-params") == "open_gop=0"
    assert after(argv, "-force_key_frames") == "expr:gte(t,n_forced*2)"
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "-map"] == [
        "[v0]",
        "[v1]",
        "[v2]",
        "[v3]",
        "0:a:0",
    ]
    assert after(argv, "-b:v:3") == "365000" and after(argv, "-maxrate:v:3") == str(round(365_000 * 1.1))
    assert (after(argv, "-ac"), after(argv, "-ar"), after(argv, "-b:a")) == ("2", "48000", "128000")
    assert after(argv, "-f") == "dash" and after(argv, "-seg_duration") == "4"
    assert after(argv, "-adaptation_sets") == "id=0,streams=v id=1,streams=a"
    assert after(argv, "-media_seg_name") == "seg-$RepresentationID$-$Number%05d$.m4s"
    assert argv[-1] == "/out/manifest.mpd"


def test_h265_and_av1_turn_scene_cuts_off() -> None:
    h265 = _argv({"codec": "h265"}, probe_of())
    assert "scenecut=0" in after(h265, "-x265-params") and after(h265, "-tag:v") == "hvc1"
    av1 = _argv({"codec": "av1"}, probe_of())
    assert after(av1, "-c:v") == "libsvtav1" and after(av1, "-svtav1-params") == "scd=0"


def test_argv_without_audio_or_without_video() -> None:
    silent = _argv({}, probe_of(audio=False))
    assert "0:a:0" not in silent and after(silent, "-adaptation_sets") == "id=0,streams=v"
    audio_only = _argv({}, probe_of(video=False))
    assert "-filter_complex" not in audio_only and after(audio_only, "-adaptation_sets") == "id=0,streams=a"


# --- subtitles ------------------------------------------------------------------------------------

SRT = (
    b"\xef\xbb\xbf1\r\n00:00:00,500 --> 00:00:01,500\r\nHello\r\n\r\n"
    b"2\r\n00:00:03,000 --> 00:00:04,000\r\nBye --> now\r\n"
)


def test_srt_and_webvtt_become_the_same_cues() -> None:
    from_srt = subtitles.parse_cues(SRT, what="the file")
    vtt = (
        b"WEBVTT\n\nSTYLE\n::cue { color: red }\n\n00:00.500 --> 00:01.500 align:start\nHello\n\n"
        b"00:03.000 --> 00:04.000\nBye --> now\n"
    )
    assert subtitles.parse_cues(vtt, what="the file") == from_srt
    assert from_srt == [subtitles.Cue(0.5, 1.5, "Hello"), subtitles.Cue(3.0, 4.0, "Bye -> now")]
    assert subtitles.webvtt(from_srt) == (
        "WEBVTT\n\n00:00:00.500 --> 00:00:01.500\nHello\n\n00:00:03.000 --> 00:00:04.000\nBye -> now\n"
    )


def test_cues_are_cut_to_the_window_and_retimed() -> None:
    cues = subtitles.parse_cues(SRT, what="the file")
    assert subtitles.clip_cues(cues, 1.0, 2.5) == [
        subtitles.Cue(0.0, 0.5, "Hello"),
        subtitles.Cue(2.0, 2.5, "Bye -> now"),
    ]
    assert subtitles.clip_cues(cues, 2.0, None) == [subtitles.Cue(1.0, 2.0, "Bye -> now")]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"just some words\n", "the file has no cues: it is not an SRT or WebVTT subtitles file"),
        (b"\x89PNG\r\n\x1a\n\xff\xfe", "the file is not UTF-8 text"),
        (
            b"x" * (subtitles.MAX_BYTES + 1),
            f"the file is larger than the limit of {subtitles.MAX_BYTES} bytes",
        ),
    ],
)
def test_a_file_that_is_not_subtitles_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(InputError) as caught:
        subtitles.parse_cues(data, what="the file")
    assert caught.value.message == message


# --- what a real ffmpeg DASH run writes, packaged -------------------------------------------------


@pytest.fixture(scope="module")
def dash_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4 s 320x180 clip with audio, packaged by the real argv into two rungs of 2 s segments."""
    root = tmp_path_factory.mktemp("dash")
    src = root / "src.mp4"
    subprocess.run(
        [
            FFMPEG, "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=4",
            "-f", "lavfi", "-i", "sine=duration=4", "-c:v", "libx264", "-preset", "ultrafast",
            "-c:a", "aac", "-shortest", str(src),
        ],
        check=True,
        timeout=60,
    )  # fmt: skip
    out = root / "out"
    out.mkdir()
    opts = parse_adaptive_options({"segment_duration": 2, "renditions": [{"height": 180}, {"height": 144}]})
    probe = probe_container(src)
    layout, rungs = plan(opts, probe)
    argv = adaptive_argv.build_adaptive_argv(src, out, opts, probe, rungs, layout, ffmpeg=FFMPEG)
    subprocess.run(argv, check=True, timeout=60)
    return out


def _package(out: Path) -> tuple[packaging.Package, dict[str, packaging.Measured]]:
    package = packaging.read_mpd((out / adaptive_argv.MPD_NAME).read_text())
    sizes = {p.name: p.stat().st_size for p in out.iterdir()}
    return package, {rep.id: packaging.measure(rep, sizes) for rep in package.representations}


def test_read_mpd_gives_every_segment_with_its_duration(dash_run: Path) -> None:
    package, measured = _package(dash_run)
    assert package.duration == pytest.approx(4.0, abs=0.05)
    assert [(r.content, r.height) for r in package.representations] == [
        ("video", 180),
        ("video", 144),
        ("audio", None),
    ]
    for rep in package.video:
        assert [name for name, _ in rep.segments] == [f"seg-{rep.id}-0000{i}.m4s" for i in (1, 2)]
    for rep in package.representations:
        assert all((dash_run / name).exists() for name, _ in rep.segments) and (dash_run / rep.init).exists()
        assert 0 < measured[rep.id].average <= measured[rep.id].peak
    assert package.video[0].codecs.startswith("avc1.64") and package.audio is not None
    assert package.audio.codecs == "mp4a.40.2"


def test_written_playlists_pass_the_checks(dash_run: Path) -> None:
    package, measured = _package(dash_run)
    spec = SubtitleSpec(url="https://x/a.vtt", label='Say "hi"', language="en", default=True)
    package = packaging.Package(
        package.representations, package.duration, (packaging.SubtitleRendition(spec, "s.vtt", "s.m3u8"),)
    )
    variants, media = check_master(packaging.master_playlist(package, measured))
    assert [v.uri for v in variants] == ["video-180p.m3u8", "video-144p.m3u8"]
    assert [(m["TYPE"], m["NAME"]) for m in media] == [("AUDIO", "Audio"), ("SUBTITLES", "Say 'hi'")]
    assert variants[1].attrs["RESOLUTION"] == "256x144" and variants[1].attrs["FRAME-RATE"] == "25.000"
    for rep in package.representations:
        playlist = check_media(packaging.media_playlist(rep.init, rep.segments), duration=4.0, frame=0.05)
        assert playlist.target == 2 and playlist.map_uri == rep.init


def test_final_mpd_adds_subtitles_and_keeps_alignment(dash_run: Path) -> None:
    package, _ = _package(dash_run)
    spec = SubtitleSpec(url="https://x/a.vtt", label="English", language="en", default=True)
    package = packaging.Package(
        package.representations, package.duration, (packaging.SubtitleRendition(spec, "s.vtt", "s.m3u8"),)
    )
    mpd = MPEGDASHParser.parse(packaging.final_mpd((dash_run / adaptive_argv.MPD_NAME).read_text(), package))
    video, audio, text = mpd.periods[0].adaptation_sets
    for aset in (video, audio):
        assert aset.segment_alignment is True and int(aset.start_with_sap) == 1
    assert [r.height for r in video.representations] == [180, 144]
    assert (text.content_type, text.mime_type, text.lang) == ("text", "text/vtt", "en")
    assert text.representations[0].base_urls[0].base_url_value == "s.vtt"


def test_the_hevc_codec_string_is_read_from_the_init_segment(tmp_path: Path) -> None:
    out = tmp_path / "hevc.mp4"
    subprocess.run(
        [
            FFMPEG, "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", "testsrc2=size=64x64:rate=25:duration=0.2",
            "-c:v", "libx265", "-x265-params", "log-level=error", "-tag:v", "hvc1",
            "-movflags", "frag_keyframe+empty_moov", str(out),
        ],
        check=True,
        timeout=60,
    )  # fmt: skip
    codec = hevc_codec_string(out.read_bytes())
    # Main profile (1), compatibility flags reversed (6), main tier and a level, then constraint bytes.
    assert codec is not None and re.fullmatch(r"hvc1\.1\.6\.L\d+(\.[0-9A-F]{1,2})+", codec), codec
    assert hevc_codec_string(b"\x00\x00\x00\x08free") is None


# --- the checks themselves ------------------------------------------------------------------------

MASTER = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="Audio",URI="audio.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=900,AVERAGE-BANDWIDTH=800,RESOLUTION=640x360,FRAME-RATE=25.000,CODECS="avc1.64001e,mp4a.40.2",AUDIO="audio"
video-360p.m3u8
"""
MEDIA = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:2
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-MAP:URI="init-0.mp4"
#EXTINF:2.000000,
seg-0-00001.m4s
#EXTINF:1.960000,
seg-0-00002.m4s
#EXT-X-ENDLIST
"""


def test_the_checks_accept_good_playlists() -> None:
    variants, media = check_master(MASTER)
    assert variants[0].attrs["CODECS"] == "avc1.64001e,mp4a.40.2" and media[0]["URI"] == "audio.m3u8"
    assert check_media(MEDIA, duration=3.96, frame=0.01).segments[1] == ("seg-0-00002.m4s", 1.96)
    assert parse_attrs('A=1,B="x,y",C-D=e') == {"A": "1", "B": "x,y", "C-D": "e"}


@pytest.mark.parametrize(
    ("old", "new", "why"),
    [
        ("#EXT-X-VERSION:7", "#EXT-X-VERSION:3", "EXT-X-VERSION"),
        ("#EXT-X-INDEPENDENT-SEGMENTS\n", "", "INDEPENDENT-SEGMENTS"),
        ("AVERAGE-BANDWIDTH=800", "AVERAGE-BANDWIDTH=1000", "AVERAGE-BANDWIDTH"),
        ("FRAME-RATE=25.000,", "", "FRAME-RATE"),
        ('AUDIO="audio"', 'AUDIO="other"', "not declared"),
        ("\nvideo-360p.m3u8", "", "URI line"),
    ],
)
def test_the_master_check_fails_on_broken_rules(old: str, new: str, why: str) -> None:
    with pytest.raises(AssertionError, match=why):
        check_master(MASTER.replace(old, new))


@pytest.mark.parametrize(
    ("old", "new", "why"),
    [
        ("#EXT-X-ENDLIST\n", "", "ENDLIST"),
        ("#EXT-X-PLAYLIST-TYPE:VOD\n", "", "VOD"),
        ('#EXT-X-MAP:URI="init-0.mp4"\n', "", "EXT-X-MAP"),
        ("#EXTINF:2.000000,", "#EXTINF:2.600000,", "over target"),
        ("#EXT-X-TARGETDURATION:2", "#EXT-X-TARGETDURATION:2.5", "TARGETDURATION"),
    ],
)
def test_the_media_check_fails_on_broken_rules(old: str, new: str, why: str) -> None:
    with pytest.raises(AssertionError, match=why):
        check_media(MEDIA.replace(old, new))


def test_the_media_check_fails_when_segments_miss_the_duration() -> None:
    with pytest.raises(AssertionError, match=r"add up to 3\.960s"):
        check_media(MEDIA, duration=4.0, frame=0.02)
