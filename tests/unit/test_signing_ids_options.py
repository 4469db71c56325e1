"""Pure pieces: ids, signed links, options between JSON and protobuf."""

from __future__ import annotations

import pytest
from transmute.media.v1 import media_pb2

from taskkit import ids
from taskkit.errors import InvalidRequest
from taskkit.options import proto_json
from taskkit.storage import signing


def test_ids_have_the_documented_shape_and_sort_by_time() -> None:
    first = ids.new_id("task", now_ms=1_700_000_000_000)
    later = ids.new_id("task", now_ms=1_700_000_000_001)
    assert ids.is_valid("task", first) and len(first) == len("task_") + 16
    assert first < later
    assert not ids.is_valid("run", first) and not ids.is_valid("task", "task_UPPER0000000000")


def test_signed_link_grants_the_key_or_everything_under_a_folder() -> None:
    path = signing.signed_path("secret", "p/t/hls/master.m3u8", expiry=2_000_000_000, prefix="p/t/hls")
    _, _, expiry, sig, _ = path.split("/", 4)
    assert signing.verify("secret", "get", int(expiry), sig, "p/t/hls/720p/seg1.ts", now=1)
    assert not signing.verify("secret", "get", int(expiry), sig, "p/t/other.mp4", now=1)
    assert not signing.verify("secret", "put", int(expiry), sig, "p/t/hls/master.m3u8", now=1)
    assert not signing.verify("other", "get", int(expiry), sig, "p/t/hls/master.m3u8", now=1)
    assert not signing.verify("secret", "get", int(expiry), sig, "p/t/hls/master.m3u8", now=2_000_000_001)


def test_a_file_grant_is_not_a_folder_grant() -> None:
    path = signing.signed_path("secret", "p/box", expiry=2_000_000_000, method="put")
    _, _, expiry, sig, _ = path.split("/", 4)
    assert signing.verify("secret", "put", int(expiry), sig, "p/box", now=1)
    assert not signing.verify("secret", "put", int(expiry), sig, "p/box/evil.mp4", now=1)


@pytest.mark.parametrize("key", ["../etc/passwd", "a//b", "/abs", "a/./b", "a/b\x00"])
def test_unsafe_keys_are_refused(key: str) -> None:
    with pytest.raises(InvalidRequest):
        signing.check_key(key)


def test_dimensions_round_trip_between_json_and_proto() -> None:
    message = proto_json.from_api({"width": 640, "height": "50%", "format": "webm"}, media_pb2.VideoOptions)
    assert message.width.pixels == 640 and message.height.percent == 50.0
    assert proto_json.to_api(message) == {"width": 640, "height": "50%", "format": "webm"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"colour": "red"}, "options.colour is not a known option; allowed options: format, codec"),
        ({"width": "wide"}, 'options.width must be a positive integer or a percentage like "50%"'),
        ({"mute": "yes"}, 'options.mute must be true or false (got "yes")'),
        ({"fps": "30"}, 'options.fps must be a number (got "30")'),
        ({"bitrate": True}, "options.bitrate must be a number (got true)"),
        ({"format": 4}, "options.format must be a string (got 4)"),
        ({"width": [1]}, 'options.width must be a positive integer or a percentage like "50%" (got [1])'),
        ("not an object", "options must be a JSON object."),
    ],
)
def test_bad_options_name_the_field(raw: object, message: str) -> None:
    with pytest.raises(InvalidRequest) as error:
        proto_json.from_api(raw, media_pb2.VideoOptions)
    assert error.value.message.startswith(message)


def test_null_options_are_not_given_and_nested_values_are_checked_too() -> None:
    message = proto_json.from_api({"width": None, "format": None, "fps": 30}, media_pb2.VideoOptions)
    assert not message.HasField("width") and not message.HasField("format") and message.fps == 30
    with pytest.raises(InvalidRequest) as error:
        proto_json.from_api(
            {"renditions": [{"height": 240}, {"height": "720"}]}, media_pb2.AdaptiveVideoOptions
        )
    assert error.value.message == 'options.renditions[1].height must be a number (got "720").'


def test_a_zero_inside_a_list_of_objects_is_kept_for_the_parser_to_judge() -> None:
    message = proto_json.from_api({"renditions": [{"height": 0}]}, media_pb2.AdaptiveVideoOptions)
    assert proto_json.to_api(message) == {"renditions": [{"height": 0}]}
