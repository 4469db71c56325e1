"""``nsfw`` cost: per image and per minute of video through the API, against the model called
directly in the same run, and images per second with the worker's concurrency.

``python -m bench.nsfw [--images N]``

Baselines, measured here: ``preprocess`` + ``NsfwModel.score`` on one image in this process
(what an image task can at best cost), and the ffmpeg frame sampling + scoring of the video
without the API. Every API time runs from the POST until ``task.succeeded`` on the SSE stream.
"""

from __future__ import annotations

import statistics
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from bench import api_client, bench_parser, bench_run, create_task, emit, running_stack, wait_done
from intelligence_service import nsfw_model
from taskkit.config import Settings
from tests.support import Origin

VIDEO_SECONDS = 60
CONCURRENCY = 2


def make_media(root: Path, images: int) -> tuple[list[Path], Path]:
    paths = []
    for index in range(images):
        path = root / f"photo{index}.jpg"
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-f", "lavfi",
             "-i", f"testsrc2=size=1280x720:duration=1:rate=1,hue=h={index * 37}", "-frames:v", "1", path],
            check=True,
        )  # fmt: skip
        paths.append(path)
    video = root / "minute.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi",
         "-i", f"testsrc2=size=640x360:rate=25:duration={VIDEO_SECONDS}",
         "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", video],
        check=True,
    )  # fmt: skip
    return paths, video


def direct_image_ms(model: nsfw_model.NsfwModel, path: Path) -> float:
    started = time.perf_counter()
    with Image.open(path) as image:
        model.score(np.stack([nsfw_model.preprocess(image)]))
    return (time.perf_counter() - started) * 1000


def main(argv: list[str] | None = None) -> None:
    parser = bench_parser("nsfw", __doc__)
    parser.add_argument("--images", type=int, default=12, help="images to classify (default 12)")
    args = parser.parse_args(argv)

    with bench_run("nsfw") as tmp:
        media = tmp / "media"
        media.mkdir()
        images, video = make_media(media, args.images)
        model = nsfw_model.load_nsfw(Settings(worker_concurrency=CONCURRENCY))
        direct_ms = statistics.median(direct_image_ms(model, path) for path in images)
        env = {"TRANSMUTE_WORKER_CONCURRENCY": str(CONCURRENCY)}
        with Origin(media) as origin, running_stack(tmp / "stack", env, intelligence=True) as stack:
            with api_client(stack, timeout=900.0) as client:

                def run(path: Path) -> float:
                    started = time.perf_counter()
                    done = wait_done(
                        client, create_task(client, "nsfw", origin.url(path.name), {})["id"], "sse"
                    )
                    if done["status"] != "succeeded":
                        raise RuntimeError(f"nsfw task ended {done['status']}: {done.get('error')}")
                    return time.perf_counter() - started

                run(images[0])  # warm-up
                api_ms = statistics.median(run(path) * 1000 for path in images)
                started = time.perf_counter()
                with ThreadPoolExecutor(CONCURRENCY * 2) as pool:
                    list(pool.map(run, images))
                per_second = len(images) / (time.perf_counter() - started)
                video_s = run(video)

    emit(f"image: api {api_ms:.1f} ms/image, direct model {direct_ms:.1f} ms/image")
    emit(f"images per second through the API with {CONCURRENCY} concurrent tasks: {per_second:.2f}")
    per_minute = video_s * 1000 * 60 / VIDEO_SECONDS
    emit(f"video: {per_minute:.0f} ms per minute of video ({VIDEO_SECONDS} s clip)")
    emit(f"ratio {api_ms / direct_ms:.3f}")


if __name__ == "__main__":
    main()
