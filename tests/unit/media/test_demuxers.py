"""The demuxer allowlist: refusals by first bytes, the probe's whitelist, and ffmpeg told ``-f``.

The last tests run the real ffmpeg binary on a polyglot (an HLS playlist that is also a valid
MPEG-TS): given only ``-i`` it reads the canary the playlist names; given the argv our builders make
it reads the served bytes.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from media_service import video_argv
from media_service.options import parse_video_options
from taskkit.errors import InputError
from taskkit.media import ProbeResult, demuxers, probe, run_ffmpeg
from taskkit.media.probe import VideoStream
from tests.support.corpus import ffprobe_json
from tests.support.hostile import (
    CANARY_SECONDS,
    CANARY_SIZE,
    CARRIER_SECONDS,
    CARRIER_SIZE,
    PLAYLIST,
    dash_mpd,
    ffconcat,
    hls_playlist,
    make_ts,
    polyglot,
)


@pytest.mark.parametrize(
    "head",
    [
        hls_playlist("file:///etc/passwd"),
        b"\xef\xbb\xbf\r\n  #EXTM3U\n",
        b"#extm3u\n",
        ffconcat("/etc/passwd"),
        dash_mpd("file:///etc/passwd"),
        b"<MPD>",
        b"[playlist]\nFile1=/etc/passwd\n",
        b"#EXTINF:10,\n/etc/passwd\n",
    ],
)
def test_playlists_and_scripts_are_refused_by_their_first_bytes(head: bytes) -> None:
    assert demuxers.refused_reason(head) == PLAYLIST


@pytest.mark.parametrize(
    "head", [b"\x00\x00\x00\x20ftypisom", b"\x1a\x45\xdf\xa3", b"G\x40\x00", b"ID3\x04", b""]
)
def test_media_signatures_pass(head: bytes) -> None:
    assert demuxers.refused_reason(head) is None


@pytest.mark.parametrize(
    "name", ["hls", "dash", "concat", "image2", "tee", "data", "subfile", "lavfi", "sdp"]
)
def test_demuxers_off_the_list_are_refused(name: str) -> None:
    with pytest.raises(InputError, match=f"^unsupported container: {name}$"):
        demuxers.demuxer(name)


def test_allowed_demuxers_are_named_by_their_first_name() -> None:
    assert demuxers.demuxer("mov,mp4,m4a,3gp,3g2,mj2") == "mov"
    assert demuxers.demuxer("matroska,webm") == "matroska"
    assert demuxers.ffmpeg_input_args("mpegts") == [
        "-protocol_whitelist", "file", "-format_whitelist", demuxers.FORMAT_WHITELIST, "-f", "mpegts",
    ]  # fmt: skip


def test_every_allowed_demuxer_exists_in_the_ffmpeg_binary() -> None:
    listed = subprocess.run(
        ["ffmpeg", "-hide_banner", "-demuxers"], capture_output=True, text=True, check=True
    )
    names = {line.split()[1] for line in listed.stdout.splitlines() if line.startswith(" D")}
    assert set(demuxers.ALLOWED) <= names


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("demuxers")
    canary = make_ts(root / "canary.ts", size=CANARY_SIZE, seconds=CANARY_SECONDS)
    carrier = make_ts(root / "carrier.ts", size=CARRIER_SIZE, seconds=CARRIER_SECONDS)
    work = root / "work"
    work.mkdir()
    (work / "input").write_bytes(polyglot(f"file://{canary}", carrier.read_bytes()))
    au = root / "sound.au"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "sine=duration=1", str(au)], check=True
    )
    return {"polyglot": work / "input", "carrier": carrier, "au": au}


async def test_the_probe_refuses_the_polyglot(files: dict[str, Path]) -> None:
    with pytest.raises(InputError, match=f"^{PLAYLIST}$"):
        await probe(files["polyglot"])


async def test_the_probe_names_a_container_off_the_list(files: dict[str, Path]) -> None:
    with pytest.raises(InputError, match=r"^unsupported container: au$"):
        await probe(files["au"])


async def test_the_probe_reports_the_demuxer_it_used(files: dict[str, Path]) -> None:
    assert (await probe(files["carrier"])).format_name == "mpegts"


def _shape(path: Path) -> tuple[int, int, float]:
    info = ffprobe_json(path)
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    return int(video["width"]), int(video["height"]), float(info["format"]["duration"])


def test_ffmpeg_left_to_detect_reads_the_canary(files: dict[str, Path], tmp_path: Path) -> None:
    """The hole itself, on this ffmpeg binary: what the allowlist exists for."""
    out = tmp_path / "out.mp4"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-i", str(files["polyglot"]), "-t", "5", str(out)],
        check=True, cwd=files["polyglot"].parent, timeout=60,
    )  # fmt: skip
    width, height, duration = _shape(out)
    assert (width, height) == CANARY_SIZE and duration == pytest.approx(CANARY_SECONDS, abs=0.3)


async def test_our_argv_makes_ffmpeg_read_the_served_bytes(files: dict[str, Path], tmp_path: Path) -> None:
    """Even past the first-bytes refusal (here bypassed), ``-f`` keeps ffmpeg on the carrier."""
    probed = ProbeResult(
        format_name="mpegts",
        mime_type="video/mp2t",
        duration=float(CARRIER_SECONDS),
        size=files["polyglot"].stat().st_size,
        video=VideoStream(
            codec="mpeg2video", width=CARRIER_SIZE[0], height=CARRIER_SIZE[1], fps=10.0, rotation=0
        ),
    )
    out = tmp_path / "out.mp4"
    argv = video_argv.build_video_argv(
        files["polyglot"], out, parse_video_options({}), probed, ffmpeg="ffmpeg"
    )
    await run_ffmpeg(
        argv, duration=probed.duration, on_progress=None, timeout=60, cwd=files["polyglot"].parent
    )
    width, height, duration = _shape(out)
    assert (width, height) == CARRIER_SIZE and duration == pytest.approx(CARRIER_SECONDS, abs=0.3)
