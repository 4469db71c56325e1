"""Sanity checks that the generated corpus and the local origin server are what they claim."""

from __future__ import annotations

import http.client
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from PIL import Image, ImageOps

from tests.support.corpus import (
    TRUNCATE_FRACTION,
    Corpus,
    CorpusError,
    build_corpus,
    ffprobe_json,
    mp4_top_level_boxes,
)
from tests.support.origin import Origin


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return build_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def origin(corpus: Corpus) -> Iterator[Origin]:
    with Origin(corpus.root, slow_chunk=512, slow_delay=0.05) as server:
        yield server


# Never route test traffic through a proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _streams(info: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [s for s in info["streams"] if s["codec_type"] == kind]


def _only(info: dict[str, Any], kind: str) -> dict[str, Any]:
    streams = _streams(info, kind)
    assert len(streams) == 1, f"expected one {kind} stream, got {len(streams)}"
    return streams[0]


def _duration(info: dict[str, Any]) -> float:
    return float(info["format"]["duration"])


def _rotation(stream: dict[str, Any]) -> int | None:
    for side in stream.get("side_data_list", []):
        if "rotation" in side:
            return int(side["rotation"])
    tag = stream.get("tags", {}).get("rotate")
    return int(tag) if tag is not None else None


def _get(
    origin: Origin, path: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    """Issue one request without following redirects; return (status, headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", origin.port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()


# ----------------------------------------------------------------------------- corpus


def test_all_files_exist_in_root(corpus: Corpus) -> None:
    files = corpus.files()
    assert len(files) == 13
    for name, path in files.items():
        assert path.parent == corpus.root, name
        assert path.is_file() and path.stat().st_size > 0, name
    assert corpus.html_page.name == "index.html"


def test_clip_av(corpus: Corpus) -> None:
    info = ffprobe_json(corpus.clip_av)
    video, audio = _only(info, "video"), _only(info, "audio")
    assert (video["codec_name"], video["width"], video["height"]) == ("h264", 320, 240)
    assert video["pix_fmt"] == "yuv420p"
    assert video["avg_frame_rate"] == "25/1"
    assert audio["codec_name"] == "aac"
    assert audio["channels"] == 2
    assert _duration(info) == pytest.approx(2.0, abs=0.1)
    boxes = mp4_top_level_boxes(corpus.clip_av)
    assert boxes.index("moov") < boxes.index("mdat"), "clip_av must be faststart"


def test_clip_silent_has_no_audio(corpus: Corpus) -> None:
    info = ffprobe_json(corpus.clip_silent)
    video = _only(info, "video")
    assert (video["codec_name"], video["width"], video["height"]) == ("h264", 320, 240)
    assert _streams(info, "audio") == []
    assert _duration(info) == pytest.approx(2.0, abs=0.1)


def test_clip_odd_dimensions(corpus: Corpus) -> None:
    info = ffprobe_json(corpus.clip_odd)
    video = _only(info, "video")
    assert (video["width"], video["height"]) == (321, 241)
    assert _only(info, "audio")["codec_name"] == "aac"
    assert _duration(info) == pytest.approx(2.0, abs=0.1)


def test_clip_rotated_has_rotation(corpus: Corpus) -> None:
    info = ffprobe_json(corpus.clip_rotated)
    video = _only(info, "video")
    assert (video["codec_name"], video["width"], video["height"]) == ("h264", 320, 180)
    rotation = _rotation(video)
    assert rotation is not None, "no rotation side data / tag"
    assert abs(rotation) % 180 == 90


def test_clip_51_and_audio_51_are_six_channel(corpus: Corpus) -> None:
    clip = ffprobe_json(corpus.clip_51)
    assert _only(clip, "video")["codec_name"] == "h264"
    audio = _only(clip, "audio")
    assert (audio["codec_name"], audio["channels"]) == ("aac", 6)
    assert audio["channel_layout"] == "5.1"

    wav = ffprobe_json(corpus.audio_51)
    assert _streams(wav, "video") == []
    audio = _only(wav, "audio")
    assert (audio["codec_name"], audio["channels"]) == ("flac", 6)
    assert _duration(wav) == pytest.approx(2.0, abs=0.1)


def test_audio_stereo_mp3(corpus: Corpus) -> None:
    info = ffprobe_json(corpus.audio_stereo)
    assert _streams(info, "video") == []
    audio = _only(info, "audio")
    assert (audio["codec_name"], audio["channels"]) == ("mp3", 2)
    assert _duration(info) == pytest.approx(3.0, abs=0.15)


def test_truncated_mp4_cannot_be_probed(corpus: Corpus) -> None:
    assert "moov" not in mp4_top_level_boxes(corpus.truncated_mp4)
    # ~30% of a 2 s 320x240 clip: tens of kilobytes, not empty.
    assert corpus.truncated_mp4.stat().st_size > 5_000
    assert TRUNCATE_FRACTION == pytest.approx(0.3)
    with pytest.raises(CorpusError, match=r"moov atom not found|Invalid data"):
        ffprobe_json(corpus.truncated_mp4)


def test_png_alpha(corpus: Corpus) -> None:
    with Image.open(corpus.png_alpha) as img:
        assert img.format == "PNG"
        assert img.mode == "RGBA"
        assert img.size == (200, 100)
        lo, hi = img.getchannel("A").getextrema()
    assert (lo, hi) == (0, 255)


def test_jpeg_exif_orientation(corpus: Corpus) -> None:
    with Image.open(corpus.jpeg_exif_rotated) as img:
        assert img.format == "JPEG"
        assert img.size == (200, 100)
        assert img.getexif().get(0x0112) == 6
        upright = ImageOps.exif_transpose(img)
    assert upright.size == (100, 200)


def test_small_images(corpus: Corpus) -> None:
    with Image.open(corpus.png_small) as img:
        assert (img.format, img.size) == ("PNG", (64, 64))
    with Image.open(corpus.bmp_image) as img:
        assert img.format == "BMP"
    assert corpus.bmp_image.read_bytes()[:2] == b"BM"


def test_html_page(corpus: Corpus) -> None:
    text = corpus.html_page.read_text(encoding="utf-8")
    assert text.lstrip().lower().startswith("<!doctype html>")
    assert "<html" in text


def test_ffprobe_json_raises_for_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CorpusError):
        ffprobe_json(tmp_path / "nope.mp4")


# ----------------------------------------------------------------------------- origin


def test_origin_serves_full_file(origin: Origin, corpus: Corpus) -> None:
    status, headers, body = _get(origin, "/clip_av.mp4")
    assert status == 200
    assert headers["content-type"] == "video/mp4"
    assert int(headers["content-length"]) == len(body)
    assert headers["accept-ranges"] == "bytes"
    assert body == corpus.clip_av.read_bytes()
    assert "/clip_av.mp4" in origin.request_log


def test_origin_content_types(origin: Origin) -> None:
    expected = {
        "/audio_stereo.mp3": "audio/mpeg",
        "/audio_51.flac": "audio/flac",
        "/png_alpha.png": "image/png",
        "/jpeg_exif_rotated.jpg": "image/jpeg",
        "/image.bmp": "image/bmp",
        "/index.html": "text/html; charset=utf-8",
    }
    for path, ctype in expected.items():
        status, headers, _ = _get(origin, path, method="HEAD")
        assert (status, headers["content-type"]) == (200, ctype), path


def test_origin_head_has_length_but_no_body(origin: Origin, corpus: Corpus) -> None:
    status, headers, body = _get(origin, "/clip_av.mp4", method="HEAD")
    assert status == 200
    assert int(headers["content-length"]) == corpus.clip_av.stat().st_size
    assert body == b""


@pytest.mark.parametrize(
    ("spec", "start", "end"),
    [("bytes=10-19", 10, 19), ("bytes=100-", 100, None), ("bytes=-50", -50, None), ("bytes=0-0", 0, 0)],
)
def test_origin_range_requests(
    origin: Origin, corpus: Corpus, spec: str, start: int, end: int | None
) -> None:
    data = corpus.clip_av.read_bytes()
    size = len(data)
    status, headers, body = _get(origin, "/clip_av.mp4", headers={"Range": spec})
    expected = data[start : None if end is None else end + 1]
    assert status == 206
    assert body == expected
    assert int(headers["content-length"]) == len(expected)
    first = start % size
    assert headers["content-range"] == f"bytes {first}-{first + len(expected) - 1}/{size}"


def test_origin_range_past_end_is_416(origin: Origin, corpus: Corpus) -> None:
    size = corpus.clip_av.stat().st_size
    status, headers, _ = _get(origin, "/clip_av.mp4", headers={"Range": f"bytes={size + 10}-"})
    assert status == 416
    assert headers["content-range"] == f"bytes */{size}"


def test_origin_missing_and_unknown_are_404(origin: Origin) -> None:
    assert _get(origin, "/missing")[0] == 404
    assert _get(origin, "/does-not-exist.mp4")[0] == 404


def test_origin_refuses_path_traversal(origin: Origin) -> None:
    assert _get(origin, "/../../etc/passwd")[0] == 404
    assert _get(origin, "/%2e%2e/%2e%2e/etc/passwd")[0] == 404


def test_origin_redirect(origin: Origin, corpus: Corpus) -> None:
    target = origin.url("png_small.png")
    status, headers, _ = _get(origin, "/redirect?to=" + quote(target, safe=""))
    assert status == 302
    assert headers["location"] == target
    assert origin.redirect_url(target) == f"{origin.base_url}/redirect?to={quote(target, safe='')}"
    # A redirect-following client ends up with the file.
    with _OPENER.open(origin.redirect_url(target), timeout=10) as resp:
        assert resp.read() == corpus.png_small.read_bytes()


def test_origin_redirect_loop(origin: Origin) -> None:
    status, headers, _ = _get(origin, "/redirect-loop")
    assert status == 302
    assert headers["location"] == origin.url("redirect-loop")


def test_origin_html_and_status(origin: Origin) -> None:
    status, headers, body = _get(origin, "/html")
    assert status == 200
    assert headers["content-type"].startswith("text/html")
    assert b"<html" in body
    assert _get(origin, "/status/503")[0] == 503


def test_origin_slow_trickles(origin: Origin, corpus: Corpus) -> None:
    data = corpus.png_alpha.read_bytes()  # ~650 bytes
    url = origin.slow_url("png_alpha.png", chunk=100, delay=0.05)
    started = time.monotonic()
    with _OPENER.open(url, timeout=10) as resp:
        assert int(resp.headers["Content-Length"]) == len(data)
        first = resp.read(1)
        headers_at = time.monotonic() - started
        body = first + resp.read()
    elapsed = time.monotonic() - started
    assert body == data
    chunks = -(-len(data) // 100)
    assert elapsed >= (chunks - 1) * 0.05 * 0.8
    assert headers_at < elapsed


def test_origin_bad_requests_do_not_crash(origin: Origin) -> None:
    assert _get(origin, "/slow/png_small.png?chunk=abc")[0] == 400
    assert _get(origin, "/redirect")[0] == 400
    assert _get(origin, "/%00evil")[0] == 404
    assert origin.errors == []


def test_origin_url_forms(origin: Origin, corpus: Corpus) -> None:
    assert origin.url("clip_av.mp4") == f"http://127.0.0.1:{origin.port}/clip_av.mp4"
    assert origin.url(corpus.clip_av) == origin.url("clip_av.mp4")
    assert origin.url("/missing") == f"{origin.base_url}/missing"


def test_origin_request_log_and_hits(corpus: Corpus) -> None:
    with Origin(corpus.root) as server:
        _get(server, "/png_small.png")
        _get(server, "/png_small.png", headers={"Range": "bytes=0-3"})
        _get(server, "/missing")
        assert server.request_log == ["/png_small.png", "/png_small.png", "/missing"]
        assert server.hits("png_small.png") == 2
        assert server.requests[1].range == "bytes=0-3"
        port = server.port
    # After exit the port no longer accepts connections.
    with pytest.raises(OSError):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", "/png_small.png")
            conn.getresponse()
        finally:
            conn.close()


def test_origin_stop_aborts_slow_response(corpus: Corpus) -> None:
    server = Origin(corpus.root, slow_chunk=16, slow_delay=1.0).start()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", "/slow/clip_av.mp4")
        resp = conn.getresponse()
        assert resp.status == 200
        resp.read(16)
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 3
        with pytest.raises(http.client.IncompleteRead):
            resp.read()
    finally:
        conn.close()
        server.stop()
