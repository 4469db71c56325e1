"""The path from POST /tasks to a finished, downloadable file."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.conftest import download, run_task
from tests.support import Corpus, Origin, ffprobe_json


def test_video_task_produces_a_downloadable_mp4(
    api: httpx.Client, origin: Origin, corpus: Corpus, tmp_path: Path
) -> None:
    task = run_task(api, "video", origin.url(corpus.clip_av.name), width=160)
    assert task["status"] == "succeeded", task
    (output,) = task["outputs"]
    assert output["type"] == "video/mp4" and output["width"] == 160 and output["height"] == 120
    info = ffprobe_json(download(api, output["url"], tmp_path / "out.mp4"))
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    assert (video["codec_name"], video["width"], video["height"]) == ("h264", 160, 120)
