"""Signed file links (``/files/<expiry>/<signature>/<key>``) and ``POST /signatures`` uploads."""

from __future__ import annotations

import io
import secrets
import time
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import pytest
from PIL import Image

from stack import Stack
from taskkit.storage import signing
from tests.conftest import MAX_INPUT_BYTES, run_task
from tests.support import Corpus, Origin, ffprobe_json


def split_link(url: str) -> tuple[int, str, str]:
    """``(expiry, signature, key)`` of a signed file link."""
    path = urlsplit(url).path
    assert path.startswith(signing.FILES_ROUTE + "/"), url
    expiry, sig, key = path[len(signing.FILES_ROUTE) + 1 :].split("/", 2)
    return int(expiry), sig, unquote(key)


def link(stack: Stack, key: str, *, expiry: int, method: str = "get", secret: str | None = None) -> str:
    """A link signed like the gateway signs them (with the stack's secret unless told otherwise)."""
    secret = stack.config.signing_secret if secret is None else secret
    return stack.base_url + signing.signed_path(secret, key, expiry=expiry, method=method)


def assert_denied(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    if response.request.method != "HEAD":
        assert response.json() == {
            "kind": "signature_invalid",
            "message": "The link's signature is invalid or it has expired.",
        }


def sign(api: httpx.Client, **body: Any) -> dict[str, Any]:
    response = api.post("/signatures", json=body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def png_output(api: httpx.Client, origin: Origin, corpus: Corpus) -> dict[str, Any]:
    """The output entry of a finished 32-px PNG image task."""
    task = run_task(api, "image", origin.url(corpus.png_small.name), width=32, format="png")
    assert task["status"] == "succeeded", task
    (output,) = task["outputs"]
    return output  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def png_bytes(png_output: dict[str, Any]) -> bytes:
    response = httpx.get(png_output["url"], timeout=10)
    assert response.status_code == 200, response.text
    return response.content


@pytest.fixture(scope="module")
def upload_folder() -> str:
    return f"uploads/{secrets.token_hex(4)}"


@pytest.fixture(scope="module")
def uploaded(api: httpx.Client, corpus: Corpus, upload_folder: str) -> dict[str, Any]:
    """The File object answered to a signed PUT of ``corpus.clip_av``."""
    grant = sign(api, filename="clip.mp4", folder=upload_folder, method="put")
    response = httpx.put(grant["url"], content=corpus.clip_av.read_bytes(), timeout=30)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


# --- serving outputs -----------------------------------------------------------------------------


def test_output_link_serves_the_file_without_an_api_key(png_output: dict[str, Any], png_bytes: bytes) -> None:
    response = httpx.get(png_output["url"], timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.headers.get("accept-ranges") == "bytes"
    assert int(response.headers["content-length"]) == len(png_bytes) == png_output["filesize"]
    with Image.open(io.BytesIO(response.content)) as image:
        assert (image.format, image.width) == ("PNG", 32)


@pytest.mark.parametrize(
    ("spec", "start", "end"),
    [("bytes=0-9", 0, 9), ("bytes=10-19", 10, 19), ("bytes=-5", -5, -1), ("bytes=100-", 100, -1)],
)
def test_range_request_is_206_with_the_right_bytes(
    png_output: dict[str, Any], png_bytes: bytes, spec: str, start: int, end: int
) -> None:
    size = len(png_bytes)
    first, last = start % size, end % size
    response = httpx.get(png_output["url"], headers={"Range": spec}, timeout=10)
    assert response.status_code == 206, response.text
    assert response.headers["content-range"] == f"bytes {first}-{last}/{size}"
    assert response.headers["content-type"] == "image/png"
    assert response.content == png_bytes[first : last + 1]


def test_unsatisfiable_range_is_416(png_output: dict[str, Any], png_bytes: bytes) -> None:
    response = httpx.get(png_output["url"], headers={"Range": f"bytes={len(png_bytes)}-"}, timeout=10)
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(png_bytes)}"


def test_head_gives_headers_without_a_body(png_output: dict[str, Any], png_bytes: bytes) -> None:
    response = httpx.head(png_output["url"], timeout=10)
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-type"] == "image/png"
    assert int(response.headers["content-length"]) == len(png_bytes)


# --- tampering and expiry ------------------------------------------------------------------------


def _flip(text: str) -> str:
    return ("A" if text[0] != "A" else "B") + text[1:]


def test_tampered_signature_is_403(png_output: dict[str, Any]) -> None:
    url = png_output["url"]
    _, sig, _ = split_link(url)
    bad = url.replace(f"/{sig}/", f"/{_flip(sig)}/")
    assert_denied(httpx.get(bad, timeout=10))
    assert_denied(httpx.head(bad, timeout=10))


def test_tampered_key_path_is_403(stack: Stack, png_output: dict[str, Any]) -> None:
    url = png_output["url"]
    expiry, sig, key = split_link(url)
    project, task_dir, name = key.split("/")
    for other_key in (
        f"{project}/{task_dir}/other.png",
        f"{project}/{task_dir}x/{name}",
        f"other/{task_dir}/{name}",
    ):
        assert_denied(httpx.get(f"{stack.base_url}/files/{expiry}/{sig}/{other_key}", timeout=10))


def test_tampered_expiry_is_403(stack: Stack, png_output: dict[str, Any]) -> None:
    expiry, sig, key = split_link(png_output["url"])
    assert_denied(httpx.get(f"{stack.base_url}/files/{expiry + 3600}/{sig}/{key}", timeout=10))


def test_expired_link_is_403(stack: Stack, png_output: dict[str, Any]) -> None:
    _, _, key = split_link(png_output["url"])
    past = int(time.time()) - 60
    assert_denied(httpx.get(link(stack, key, expiry=past), timeout=10))
    assert_denied(httpx.head(link(stack, key, expiry=past), timeout=10))
    # The same key signed the same way but still valid works, so the 403 is the expiry's doing.
    assert httpx.get(link(stack, key, expiry=int(time.time()) + 60), timeout=10).status_code == 200


def test_link_signed_with_another_secret_is_403(stack: Stack, png_output: dict[str, Any]) -> None:
    _, _, key = split_link(png_output["url"])
    forged = link(stack, key, expiry=int(time.time()) + 60, secret=stack.config.signing_secret + "x")
    assert_denied(httpx.get(forged, timeout=10))


# --- POST /signatures and uploads ----------------------------------------------------------------


def test_signature_object_shape(api: httpx.Client, stack: Stack) -> None:
    expiry = int(time.time()) + 600
    body = sign(api, filename="photo.jpg", folder="/albums/2025/", expiry=expiry)
    assert set(body) == {"domain", "filename", "folder", "expiry", "method", "signature", "url"}
    assert body["filename"] == "photo.jpg" and body["folder"] == "albums/2025"
    assert body["expiry"] == expiry and body["method"] == "get"
    assert body["domain"] == urlsplit(stack.base_url).netloc
    assert body["url"].startswith(stack.base_url + "/files/")
    assert body["signature"] in body["url"] and str(expiry) in body["url"]
    assert body["url"].endswith("/albums/2025/photo.jpg")


def test_default_expiry_is_about_an_hour(api: httpx.Client) -> None:
    body = sign(api, filename="x.bin")
    assert abs(body["expiry"] - (time.time() + 3600)) < 60


def test_put_upload_returns_a_signed_get_link(
    stack: Stack, uploaded: dict[str, Any], corpus: Corpus, upload_folder: str
) -> None:
    data = corpus.clip_av.read_bytes()
    assert uploaded["filename"] == "clip.mp4" and uploaded["folder"] == upload_folder
    assert uploaded["filesize"] == len(data)
    assert uploaded["url"].startswith(stack.base_url + "/files/")
    response = httpx.get(uploaded["url"], timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"] == "video/mp4"
    assert response.content == data
    ranged = httpx.get(uploaded["url"], headers={"Range": "bytes=1000-1999"}, timeout=10)
    assert ranged.status_code == 206 and ranged.content == data[1000:2000]
    assert ranged.headers["content-range"] == f"bytes 1000-1999/{len(data)}"


def test_uploaded_file_is_a_task_input(
    api: httpx.Client, uploaded: dict[str, Any], corpus: Corpus, tmp_path: Any
) -> None:
    task = run_task(api, "video", uploaded["url"], width=160)
    assert task["status"] == "succeeded", task
    (source,) = task["inputs"]
    assert source["filesize"] == corpus.clip_av.stat().st_size and source["width"] == 320
    (output,) = task["outputs"]
    response = httpx.get(output["url"], timeout=30)
    assert response.status_code == 200 and response.headers["content-type"] == "video/mp4"
    (tmp_path / "out.mp4").write_bytes(response.content)
    video = next(s for s in ffprobe_json(tmp_path / "out.mp4")["streams"] if s["codec_type"] == "video")
    assert (video["width"], video["height"]) == (160, 120)


def test_put_signature_cannot_get_and_get_signature_cannot_put(
    api: httpx.Client, uploaded: dict[str, Any], upload_folder: str
) -> None:
    put_grant = sign(api, filename="clip.mp4", folder=upload_folder, method="put")
    assert_denied(httpx.get(put_grant["url"], timeout=10))
    assert_denied(httpx.head(put_grant["url"], timeout=10))
    assert_denied(httpx.put(uploaded["url"], content=b"overwrite", timeout=10))
    get_grant = sign(api, filename="clip.mp4", folder=upload_folder, method="get")
    assert_denied(httpx.put(get_grant["url"], content=b"overwrite", timeout=10))
    # Nothing was overwritten, and the GET grant reads the uploaded file.
    response = httpx.get(get_grant["url"], timeout=10)
    assert response.status_code == 200 and response.headers["content-length"] == str(uploaded["filesize"])


def test_put_signature_for_a_file_does_not_grant_the_folder_below_it(api: httpx.Client) -> None:
    """A PUT link for ``box`` must not let its holder write ``box/anything``: file and folder
    grants need distinct signatures (folder grants exist for HLS/DASH reads, not for uploads)."""
    name = f"box-{secrets.token_hex(4)}"
    grant = sign(api, filename=name, method="put")
    below = grant["url"].replace(f"/{name}", f"/{name}/smuggled.bin")
    response = httpx.put(below, content=b"not granted", timeout=10)
    assert_denied(response)


def test_get_signature_for_a_missing_file_is_404(api: httpx.Client) -> None:
    grant = sign(api, filename=f"nothing-{secrets.token_hex(4)}.mp4")
    response = httpx.get(grant["url"], timeout=10)
    assert response.status_code == 404, response.text
    assert response.json()["kind"] == "file_not_found"


def test_uploads_of_projects_do_not_collide(
    api: httpx.Client, other_api: httpx.Client, uploaded: dict[str, Any], upload_folder: str
) -> None:
    theirs = sign(other_api, filename="clip.mp4", folder=upload_folder, method="put")
    assert httpx.put(theirs["url"], content=b"their bytes", timeout=10).status_code == 201
    mine = httpx.get(uploaded["url"], timeout=10)
    assert mine.status_code == 200 and len(mine.content) == uploaded["filesize"]


def test_upload_over_the_input_limit_is_refused_and_not_stored(api: httpx.Client) -> None:
    name = f"big-{secrets.token_hex(4)}.bin"
    put_grant = sign(api, filename=name, method="put")
    response = httpx.put(put_grant["url"], content=b"\0" * (MAX_INPUT_BYTES + 1), timeout=30)
    assert response.status_code in (400, 413), response.text
    assert set(response.json()) == {"kind", "message"}
    stored = httpx.get(sign(api, filename=name)["url"], timeout=10)
    assert stored.status_code == 404, stored.status_code


@pytest.mark.parametrize(
    "body",
    [
        {"filename": "x.bin", "expiry": 1_000_000_000},
        {"filename": "x.bin", "expiry": "soon"},
        {"filename": "x.bin", "expiry": 4_000_000_000},
        {"filename": "../x"},
        {"filename": "a/../../x"},
        {"filename": "x", "folder": "../other"},
        {"filename": ""},
        {"filename": "x", "method": "delete"},
        {"folder": "uploads"},
    ],
    ids=[
        "expiry-past",
        "expiry-not-int",
        "expiry-far-future",
        "dotdot",
        "dotdot-nested",
        "folder-escape",
        "empty-filename",
        "bad-method",
        "no-filename",
    ],
)
def test_signature_request_validation(api: httpx.Client, body: dict[str, Any]) -> None:
    response = api.post("/signatures", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["kind"] == "request_invalid" and set(response.json()) == {"kind", "message"}


def test_past_expiry_for_signature_is_400_even_by_one_second(api: httpx.Client) -> None:
    response = api.post("/signatures", json={"filename": "x.bin", "expiry": int(time.time()) - 1})
    assert response.status_code == 400 and "expiry" in response.json()["message"], response.text
