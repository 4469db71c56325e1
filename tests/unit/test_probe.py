"""ffprobe JSON → ProbeResult, on canned ffprobe output."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from taskkit.probe import parse_probe, probe_still


def video(codec: str, **extra: object) -> dict:
    return {"codec_type": "video", "codec_name": codec, "width": 320, "height": 180, **extra}


def test_avif_is_an_image_although_it_is_an_mp4_family_file() -> None:
    data = {
        "format": {
            "format_name": "mov,mp4,m4a,3gp,3g2,mj2",
            "duration": "0.04",
            "tags": {"major_brand": "avif"},
        },
        "streams": [video("av1")],
    }
    result = parse_probe(data, 100)
    assert result.is_image and result.mime_type == "image/avif" and result.duration is None


def test_mov_mp4_and_audio_only_types() -> None:
    mov = {
        "format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "tags": {"major_brand": "qt  "}},
        "streams": [video("h264")],
    }
    assert parse_probe(mov, 1).mime_type == "video/quicktime"
    m4a = {
        "format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2"},
        "streams": [{"codec_type": "audio", "codec_name": "aac"}],
    }
    assert parse_probe(m4a, 1).mime_type == "audio/mp4"


def test_rotation_from_the_display_matrix_swaps_display_size() -> None:
    data = {
        "format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration": "2.0"},
        "streams": [video("h264", side_data_list=[{"rotation": -90}], avg_frame_rate="30000/1001")],
    }
    result = parse_probe(data, 1)
    assert result.video is not None
    assert (result.video.display_width, result.video.display_height) == (180, 320)
    assert result.video.fps == 29.97 and result.duration == 2.0


def test_gif_and_png_are_images_and_cover_art_is_not_video() -> None:
    assert parse_probe({"format": {"format_name": "gif"}, "streams": [video("gif")]}, 1).is_image
    assert (
        parse_probe({"format": {"format_name": "png_pipe"}, "streams": [video("png")]}, 1).mime_type
        == "image/png"
    )
    mp3 = {
        "format": {"format_name": "mp3", "duration": "3.0"},
        "streams": [
            {"codec_type": "audio", "codec_name": "mp3"},
            video("mjpeg", disposition={"attached_pic": 1}),
        ],
    }
    result = parse_probe(mp3, 1)
    assert result.video is None and result.mime_type == "audio/mpeg"


def test_still_images_are_described_from_their_header(tmp_path: Path) -> None:
    png = tmp_path / "a.png"
    Image.new("RGBA", (40, 30)).save(png)
    result = probe_still(png)
    assert result is not None and result.is_image and result.mime_type == "image/png"
    assert result.video is not None and (result.video.width, result.video.height) == (40, 30)
    assert result.size == png.stat().st_size
    text = tmp_path / "a.txt"
    text.write_text("<html></html>")
    assert probe_still(text) is None
