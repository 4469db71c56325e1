"""The envoy config renderer: every variant passes the real envoy's ``--mode validate`` (which loads
the descriptor set, the certificates and every filter), and the rendered YAML says what the trust
boundary and the streaming routes need."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from stack.envoy import EnvoyConfig, TlsFiles, UpstreamNames, envoy_argv, render, split_address
from tests.support.certs import make_certs

DESCRIPTOR = Path(__file__).resolve().parents[3] / "gen" / "transmute.pb"
_VALIDATE_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    certs = make_certs(tmp_path_factory.mktemp("pki"))
    return TlsFiles(cert=certs.client_cert, key=certs.client_key, ca=certs.ca)


def base(tmp_path: Path) -> EnvoyConfig:
    return EnvoyConfig(
        gateways=("127.0.0.1:18081",),
        media=("127.0.0.1:50061",),
        descriptor=DESCRIPTOR,
        access_log=tmp_path / "access.log",
    )


def variants(tmp_path: Path, tls: TlsFiles) -> dict[str, EnvoyConfig]:
    one = base(tmp_path)
    return {
        "one of each": one,
        "scaled": dataclasses.replace(
            one,
            gateways=("127.0.0.1:18081", "127.0.0.1:18082"),
            media=("127.0.0.1:50061", "127.0.0.1:50062"),
            intelligence=("127.0.0.1:50071", "127.0.0.1:50072"),
            tracks=("127.0.0.1:50081", "127.0.0.1:50082"),
        ),
        "service names": dataclasses.replace(
            one,
            gateways=("gateway:8080",),
            media=("media-api:50051",),
            intelligence=("intelligence-api:50051",),
            http_host="0.0.0.0",
            grpc_host="0.0.0.0",
        ),
        "ipv6": dataclasses.replace(one, media=("[::1]:50061",), grpc_host="::1"),
        "mtls upstreams": dataclasses.replace(one, upstream_tls=tls),
        "mtls everywhere": dataclasses.replace(one, upstream_tls=tls, grpc_listener_tls=tls),
        "mtls with deployment names": dataclasses.replace(
            one,
            intelligence=("intelligence-api:50051",),
            upstream_tls=tls,
            upstream_names=UpstreamNames(media="transmute-media-api.transmute.svc"),
        ),
        "small body limit": dataclasses.replace(one, max_body_bytes=1024),
    }


def validate(config_text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "envoy.yaml"
    path.write_text(config_text)
    argv = [*envoy_argv(path), "--mode", "validate"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=_VALIDATE_TIMEOUT_S, check=False)


@pytest.mark.parametrize(
    "name",
    [
        "one of each",
        "scaled",
        "service names",
        "ipv6",
        "mtls upstreams",
        "mtls everywhere",
        "mtls with deployment names",
        "small body limit",
    ],
)
def test_every_variant_validates(name: str, tmp_path: Path, tls: TlsFiles) -> None:
    result = validate(render(variants(tmp_path, tls)[name]), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_validation_catches_a_missing_descriptor(tmp_path: Path) -> None:
    broken = dataclasses.replace(base(tmp_path), descriptor=tmp_path / "absent.pb")
    result = validate(render(broken), tmp_path)
    assert result.returncode != 0
    assert "absent.pb" in result.stdout + result.stderr


def listener(doc: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [item for item in doc["static_resources"]["listeners"] if item["name"] == name]
    return found  # type: ignore[no-any-return]


def manager(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return listener(doc, name)["filter_chains"][0]["filters"][0]["typed_config"]  # type: ignore[no-any-return]


def clusters(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in doc["static_resources"]["clusters"]}


def addresses(cluster: dict[str, Any]) -> list[tuple[str, int]]:
    endpoints = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]
    return [
        (
            e["endpoint"]["address"]["socket_address"]["address"],
            e["endpoint"]["address"]["socket_address"]["port_value"],
        )
        for e in endpoints
    ]


def test_public_listener_strips_the_project_header_and_has_no_transcoder(tmp_path: Path) -> None:
    doc = yaml.safe_load(render(base(tmp_path)))
    public = manager(doc, "http")
    assert public["route_config"]["request_headers_to_remove"] == ["transmute-project"]
    filters = [f["name"] for f in public["http_filters"]]
    assert "envoy.filters.http.grpc_json_transcoder" not in filters
    assert {r["route"]["cluster"] for r in public["route_config"]["virtual_hosts"][0]["routes"]} == {
        "gateway"
    }


def test_event_streams_have_no_timeouts_and_bodies_are_limited(tmp_path: Path) -> None:
    doc = yaml.safe_load(render(dataclasses.replace(base(tmp_path), max_body_bytes=4096)))
    public = manager(doc, "http")
    events = public["route_config"]["virtual_hosts"][0]["routes"][0]
    template = events["match"]["path_match_policy"]["typed_config"]["path_template"]
    assert template == "/tasks/{id}/events"
    assert events["route"]["timeout"] == "0s" and events["route"]["idle_timeout"] == "0s"
    (buffer,) = [f for f in public["http_filters"] if f["name"] == "envoy.filters.http.buffer"]
    assert buffer["typed_config"]["max_request_bytes"] == 4096


def test_grpc_routes_and_the_tasks_cluster_span_every_family(tmp_path: Path) -> None:
    config = dataclasses.replace(
        base(tmp_path),
        media=("127.0.0.1:1", "127.0.0.1:2"),
        intelligence=("127.0.0.1:3",),
        tracks=("127.0.0.1:4", "127.0.0.1:1"),
    )
    doc = yaml.safe_load(render(config))
    routes = manager(doc, "grpc")["route_config"]["virtual_hosts"][0]["routes"]
    assert {r["match"]["prefix"]: r["route"]["cluster"] for r in routes} == {
        "/transmute.media.v1.Media/": "media",
        "/transmute.intelligence.v1.Intelligence/": "intelligence",
        "/transmute.tracks.v1.Tracks/": "tracks",
        "/transmute.tasks.v1.Tasks/": "tasks",
    }
    assert all("unavailable" in r["route"]["retry_policy"]["retry_on"] for r in routes)
    by_name = clusters(doc)
    assert addresses(by_name["tasks"]) == [("127.0.0.1", p) for p in (1, 2, 3, 4)]
    for name in ("media", "intelligence", "tracks", "tasks"):
        cluster = by_name[name]
        assert cluster["lb_policy"] == "LEAST_REQUEST"
        assert "grpc_health_check" in cluster["health_checks"][0]
        assert cluster["outlier_detection"]["consecutive_gateway_failure"] > 0
        assert "retry_budget" in cluster["circuit_breakers"]["thresholds"][0]
        assert cluster["transport_socket"] is None


def _pinned(cluster: dict[str, Any]) -> tuple[list[str], str | None]:
    """The DNS names a cluster's upstream TLS accepts, and the SNI it sends."""
    context = cluster["transport_socket"]["typed_config"]
    matchers = context["common_tls_context"]["validation_context"]["match_typed_subject_alt_names"]
    assert {m["san_type"] for m in matchers} == {"DNS"}
    return [m["matcher"]["exact"] for m in matchers], context.get("sni")


def test_upstream_tls_pins_each_familys_name(tmp_path: Path, tls: TlsFiles) -> None:
    """The chain alone would let any certificate of the CA pass as any family."""
    config = dataclasses.replace(
        base(tmp_path), intelligence=("127.0.0.1:3",), tracks=("127.0.0.1:4",), upstream_tls=tls
    )
    by_name = clusters(yaml.safe_load(render(config)))
    assert _pinned(by_name["media"]) == (["media"], "media")
    assert _pinned(by_name["intelligence"]) == (["intelligence"], "intelligence")
    assert _pinned(by_name["tracks"]) == (["tracks"], "tracks")
    assert _pinned(by_name["tasks"]) == (["media", "intelligence", "tracks"], None)
    assert by_name["gateway"].get("transport_socket") is None  # HTTP to the gateways, no TLS


def test_upstream_names_are_the_deployments_own(tmp_path: Path, tls: TlsFiles) -> None:
    names = UpstreamNames(media="transmute-media-api", tracks="transmute-tracks-api")
    config = dataclasses.replace(
        base(tmp_path), tracks=("127.0.0.1:4",), upstream_tls=tls, upstream_names=names
    )
    by_name = clusters(yaml.safe_load(render(config)))
    assert _pinned(by_name["media"]) == (["transmute-media-api"], "transmute-media-api")
    assert _pinned(by_name["tracks"]) == (["transmute-tracks-api"], "transmute-tracks-api")
    # the tasks cluster: the families it balances (no intelligence replicas here)
    assert _pinned(by_name["tasks"]) == (["transmute-media-api", "transmute-tracks-api"], None)


def test_split_address() -> None:
    assert split_address("media-api:50051") == ("media-api", 50051)
    assert split_address("[::1]:9") == ("::1", 9)
    for bad in ("media-api", ":50051", "host:port"):
        with pytest.raises(ValueError):
            split_address(bad)
