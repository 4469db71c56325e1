"""Hostile inputs, generated at test time: files that make a demuxer read *other* files.

Each one points at a canary, a short MPEG-TS whose size and duration differ from every carrier's,
so an output made from the canary instead of the served bytes shows in its pixels or duration; or
at a local listener that must never see a connection. See ``taskkit/media/demuxers.py`` for why.

* ``polyglot``: an HLS playlist padded with a ``#`` comment line to 188-byte packets, then a valid
  MPEG-TS. libavformat versions disagree on what it is (mpegts or hls).
* ``hls_playlist``, ``ffconcat``, ``dash_mpd``: plain playlists and scripts.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

_TS_PACKET = 188
CARRIER_SIZE, CARRIER_SECONDS = (64, 48), 2
CANARY_SIZE, CANARY_SECONDS = (96, 80), 3


def make_ts(out: Path, *, size: tuple[int, int], seconds: int) -> Path:
    """A small MPEG-TS with video and audio (so every media kind would accept it)."""
    subprocess.run(
        [
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"testsrc=size={size[0]}x{size[1]}:rate=10:duration={seconds}",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:duration={seconds}",
            "-c:v",
            "mpeg2video",
            "-c:a",
            "mp2",
            "-f",
            "mpegts",
            str(out),
        ],
        check=True,
        timeout=60,
    )
    return out


def hls_playlist(entry: str) -> bytes:
    return (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXT-X-MEDIA-SEQUENCE:0\n"
        f"#EXTINF:10.0,\n{entry}\n#EXT-X-ENDLIST\n"
    ).encode()


def polyglot(entry: str, carrier: bytes) -> bytes:
    """The playlist, padded with a comment line to a whole number of TS packets, then the carrier."""
    head = hls_playlist(entry)
    padding = -(len(head) + 2) % _TS_PACKET  # after "#" and "\n"
    return head + b"#" + b"x" * padding + b"\n" + carrier


def ffconcat(entry: str) -> bytes:
    return f"ffconcat version 1.0\nfile '{entry}'\n".encode()


def dash_mpd(entry: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT3S" '
        'profiles="urn:mpeg:dash:profile:isoff-on-demand:2011">\n'
        f'<Period><AdaptationSet mimeType="video/mp2t"><Representation id="0" bandwidth="1000">'
        f"<BaseURL>{entry}</BaseURL></Representation></AdaptationSet></Period></MPD>\n"
    ).encode()


def climbing_path(target: Path, depth: int = 12) -> str:
    """A relative path that reaches ``target`` from any directory fewer than ``depth`` levels deep."""
    return "../" * depth + str(target).lstrip("/")


@dataclass(frozen=True)
class HostileCorpus:
    root: Path  # served by the origin
    canary: Path
    # case -> (the file to serve, the error the task must fail with)
    cases: dict[str, tuple[Path, str]]


PLAYLIST = "the input is a playlist or script, not a media file"


def build_hostile_corpus(
    root: Path, canary_dir: Path, listener_url: str, storage_file: Path | None
) -> HostileCorpus:
    """Write every hostile file under ``root``; the canary goes to ``canary_dir`` (world-readable,
    so only the demuxer rules, not file permissions, keep it out of an output)."""
    root.mkdir(parents=True, exist_ok=True)
    canary = make_ts(canary_dir / "canary.ts", size=CANARY_SIZE, seconds=CANARY_SECONDS)
    carrier = make_ts(root / "carrier.tmp.ts", size=CARRIER_SIZE, seconds=CARRIER_SECONDS).read_bytes()
    absolute = f"file://{canary}"
    files: dict[str, tuple[bytes, str, str]] = {
        "polyglot_file_absolute": (polyglot(absolute, carrier), "clip.ts", PLAYLIST),
        "polyglot_file_relative": (polyglot(climbing_path(canary), carrier), "clip.ts", PLAYLIST),
        "polyglot_http": (polyglot(f"{listener_url}/seg.ts", carrier), "clip.ts", PLAYLIST),
        "hls_as_ts": (hls_playlist(absolute), "movie.ts", PLAYLIST),
        "hls_as_mp4": (hls_playlist(absolute), "movie.mp4", PLAYLIST),  # served as video/mp4
        "hls_as_m3u8": (hls_playlist(absolute), "movie.m3u8", PLAYLIST),
        "hls_with_bom": (b"\xef\xbb\xbf \n" + hls_playlist(absolute), "movie.mp4", PLAYLIST),
        "hls_http_entry": (hls_playlist(f"{listener_url}/seg.ts"), "live.ts", PLAYLIST),
        "ffconcat": (ffconcat(str(canary)), "list.mp4", PLAYLIST),
        "dash_mpd": (dash_mpd(absolute), "manifest.mp4", PLAYLIST),
        "image2_pattern_name": (hls_playlist(absolute), "img-%d.png", PLAYLIST),
    }
    if storage_file is not None:
        files["polyglot_other_project"] = (polyglot(f"file://{storage_file}", carrier), "clip.ts", PLAYLIST)
    cases: dict[str, tuple[Path, str]] = {}
    for name, (body, served_as, error) in files.items():
        folder = root / name
        folder.mkdir(exist_ok=True)
        (folder / served_as).write_bytes(body)
        cases[name] = (folder / served_as, error)
    (root / "carrier.tmp.ts").unlink()
    return HostileCorpus(root=root, canary=canary, cases=cases)
