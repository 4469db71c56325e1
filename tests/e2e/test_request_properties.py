"""Random bodies, query strings and headers at the real gateway (hypothesis).

Whatever arrives, the gateway answers: never a 5xx, every 4xx is exactly ``{kind, message}``, and
a refused create stores nothing. Examples are derandomized so CI runs the same ones every time;
the strategies lean towards the values that used to break the API (Infinity, NaN, lone
surrogates, deep nesting, huge integers, private addresses).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taskkit.rpc import KINDS
from tests.conftest import wait_done
from tests.support import Corpus, Origin

PROPERTY_SETTINGS = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

_TEXT = st.text(max_size=12) | st.sampled_from(["\ud800", "x\udfff", "", "a" * 300, "../etc", "é"])
_NUMBERS = (
    st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([10**400, -1, 0, 2**63, 2**64])
)
_SCALARS = st.none() | st.booleans() | _NUMBERS | _TEXT
JSON_VALUES = st.recursive(
    _SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_TEXT, children, max_size=4),
    max_leaves=12,
)


def deep(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"k": value}
    return value


def _urls(image_url: str) -> st.SearchStrategy[Any]:
    return (
        st.sampled_from(
            [image_url, "http://10.0.0.1/a.png", "ftp://x/y", "http://[::1]/", "not a url", "https://\ud800/"]
        )
        | JSON_VALUES
    )


def create_bodies(image_url: str) -> st.SearchStrategy[dict[str, Any]]:
    fields = {
        "kind": st.sampled_from([*KINDS, "zip"]) | JSON_VALUES,
        "url": _urls(image_url),
        "options": st.dictionaries(
            st.sampled_from(["width", "height", "format", "quality", "fit", "start", "end", "codec"]) | _TEXT,
            JSON_VALUES,
            max_size=4,
        )
        | JSON_VALUES,
        "metadata": JSON_VALUES | st.integers(0, 60).map(deep),
        "filename": _TEXT | JSON_VALUES,
        "folder": _TEXT | JSON_VALUES,
        "ref": _TEXT,
        "width": JSON_VALUES,  # the flat (2025-08-20) shape puts options at the top level
    }
    return st.fixed_dictionaries({"kind": fields.pop("kind")}, optional=fields)  # type: ignore[arg-type]


def assert_contract(response: httpx.Response) -> None:
    """No 5xx (but the documented 501 of a kind whose service is not deployed); 4xx ``{kind, message}``."""
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body, dict) and set(body) == {"kind", "message"}, body
        assert isinstance(body["kind"], str) and isinstance(body["message"], str) and body["message"], body
        allowed_5xx = response.status_code == 501 and body["kind"] == "kind_unavailable"
        assert response.status_code < 500 or allowed_5xx, (response.status_code, response.text)


def newest_id(api: httpx.Client) -> str | None:
    response = api.get("/tasks", params={"limit": 1})
    assert response.status_code == 200, response.text
    tasks = response.json()
    return tasks[0]["id"] if tasks else None


@pytest.fixture(scope="module")
def image_url(origin: Origin, corpus: Corpus) -> str:
    return origin.url(corpus.png_small.name)


def test_random_create_bodies(api: httpx.Client, image_url: str) -> None:
    @PROPERTY_SETTINGS
    @given(body=create_bodies(image_url) | JSON_VALUES, version=st.sampled_from([None, "2025-08-20", "x"]))
    def check(body: Any, version: str | None) -> None:
        before = newest_id(api)
        headers = {"Content-Type": "application/json"}
        if version is not None:
            headers["Accept-Version"] = version
        # allow_nan and ensure_ascii put Infinity, NaN and "\ud800" escapes on the wire as a client could.
        content = json.dumps(body, allow_nan=True, ensure_ascii=True).encode()
        response = api.post("/tasks", content=content, headers=headers)
        assert_contract(response)
        if response.status_code == 201:
            api.post(f"/tasks/{response.json()['id']}/cancel")  # keep the workers free
        else:
            assert newest_id(api) == before, f"a refused create stored a task: {response.text}"

    check()


_QUERY_NAMES = (
    st.sampled_from(["limit", "page", "after", "before", "order", "status", "kind", "run_id"]) | _TEXT
)
_QUERY_VALUES = _TEXT | _NUMBERS.map(str) | st.sampled_from(["9" * 40, "-0", "1e3", "task_0000000000000000"])


def test_random_list_queries(api: httpx.Client) -> None:
    @PROPERTY_SETTINGS
    @given(
        query=st.lists(st.tuples(_QUERY_NAMES, _QUERY_VALUES), max_size=5),
        version=st.sampled_from([None, "2025-08-20", "latest", "1999-01-01"]),
    )
    def check(query: list[tuple[str, str]], version: str | None) -> None:
        headers = {"Accept-Version": version} if version is not None else {}
        # Percent-encoded bytes as an attacker would send them: a lone surrogate becomes the
        # invalid UTF-8 sequence %ED%A0%80.
        pairs = [(k.encode("utf-8", "surrogatepass"), v.encode("utf-8", "surrogatepass")) for k, v in query]
        raw = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)
        assert_contract(api.get(f"/tasks?{raw}", headers=headers))

    check()


def test_random_event_stream_resumes(api: httpx.Client, image_url: str) -> None:
    task = wait_done(api, api.post("/tasks", json={"kind": "image", "url": image_url}).json()["id"])
    header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"))

    @PROPERTY_SETTINGS
    @given(last_event_id=header_text | _NUMBERS.map(str))
    def check(last_event_id: str) -> None:
        headers = {b"Last-Event-ID": last_event_id.strip().encode("latin-1")}
        with api.stream("GET", f"/tasks/{task['id']}/events", headers=headers, timeout=30) as response:
            response.read()
            assert_contract(response)

    check()
