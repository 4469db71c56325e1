"""The deploy files, checked without a cluster or a Docker daemon.

By schema: every Kubernetes object with kubernetes-validate (the API's own schemas, strict, so an
unknown field fails), every KEDA ScaledObject against the openAPIV3Schema of KEDA's CRD and
deploy/compose.yaml against the compose-spec schema (both shipped in deploy/schemas/), the NATS
Helm values against the chart's own default values. By cross-reference, what no schema sees:
selectors, ports, probe services, autoscaling triggers against the consumers the worker really
creates (``taskkit.records.jetstream``), every ``TRANSMUTE_*`` name against ``Settings``, Dockerfile
targets, entry points and the termination grace against the task lease. The model bake step of
the intelligence image runs for real.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from fnmatch import fnmatch
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from intelligence_service.family import FAMILY as INTELLIGENCE
from intelligence_service.whisper_model import MODEL_NAME, MODEL_SHA256, sha256_file
from media_service.family import FAMILY as MEDIA
from taskkit.config import Settings
from taskkit.records import WORK_STREAM, work_consumer
from taskkit.runtime import Family
from taskkit.service import ROLES
from tracks_service.family import FAMILY as TRACKS

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
SCHEMAS = DEPLOY / "schemas"
OVERLAYS = (K8S, K8S / "gpu-speech")
K8S_VERSION = "1.34.0"  # a recent release kubernetes-validate ships schemas for
FAMILIES: dict[str, Family] = {family.name: family for family in (MEDIA, INTELLIGENCE, TRACKS)}
KEDA_API = "keda.sh/v1alpha1"
NATS_ACCOUNT = "$G"  # the global account of a server without accounts (nats-values.yaml)

Doc = dict[str, Any]


# ---- loading ---------------------------------------------------------------------------------


def _yaml_docs(path: Path) -> list[Doc]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _merge(base: Any, patch: Any, *, by_name: bool) -> Any:
    """A kustomize patch, as far as these files use one: maps merge, ``null`` deletes; a list of
    named items merges by name where the schema says so (built-in kinds: containers, env), else
    (custom resources) the patch's list replaces the whole list."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = _merge(base[key], value, by_name=by_name) if key in base else value
        return merged
    if by_name and isinstance(base, list) and isinstance(patch, list):
        if all(isinstance(item, dict) and "name" in item for item in [*base, *patch]):
            merged_list = [dict(item) for item in base]
            for item in patch:
                names = [existing["name"] for existing in merged_list]
                if item["name"] in names:
                    at = names.index(item["name"])
                    merged_list[at] = _merge(merged_list[at], item, by_name=True)
                else:
                    merged_list.append(item)
            return merged_list
    return patch


def build(directory: Path) -> list[Doc]:
    """What ``kubectl apply -k directory`` would apply (resources, patches, namespace)."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    docs: list[Doc] = []
    for entry in kustomization["resources"]:
        path = (directory / entry).resolve()
        docs.extend(build(path) if path.is_dir() else _yaml_docs(path))
    for patch_entry in kustomization.get("patches", []):
        (patch,) = _yaml_docs(directory / patch_entry["path"])
        (at,) = [i for i, doc in enumerate(docs) if _ident(doc) == _ident(patch)]
        docs[at] = _merge(docs[at], patch, by_name=patch["apiVersion"] != KEDA_API)
    if "namespace" in kustomization:
        for doc in docs:
            if doc["kind"] != "Namespace":
                doc.setdefault("metadata", {})["namespace"] = kustomization["namespace"]
    return docs


def _ident(doc: Doc) -> tuple[str, str, str]:
    return doc["apiVersion"], doc["kind"], doc["metadata"]["name"]


def _of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [doc for doc in docs if doc["kind"] == kind]


@cache
def _builds() -> dict[str, list[Doc]]:
    return {str(d.relative_to(DEPLOY)): build(d) for d in OVERLAYS}


def _all_docs() -> Iterator[tuple[str, Doc]]:
    for name, docs in _builds().items():
        for doc in docs:
            yield f"{name}:{doc['kind']}/{doc['metadata']['name']}", doc


def _compose() -> Doc:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def _pod(deployment: Doc) -> Doc:
    return deployment["spec"]["template"]["spec"]


def _role(deployment: Doc) -> str:
    (container,) = _pod(deployment)["containers"]
    args = container.get("args", [])
    return args[args.index("--role") + 1] if "--role" in args else "gateway"


def _family_of(deployment: Doc) -> Family | None:
    (container,) = _pod(deployment)["containers"]
    image = container["image"].split(":")[0].removeprefix("transmute-").removesuffix("-gpu")
    return FAMILIES.get(image)


def _env(docs: list[Doc], deployment: Doc) -> dict[str, str]:
    """The container's literal TRANSMUTE_* environment: its ConfigMaps, then its own ``env``."""
    (container,) = _pod(deployment)["containers"]
    maps = {doc["metadata"]["name"]: doc.get("data", {}) for doc in _of_kind(docs, "ConfigMap")}
    env = _image_env(container["image"].split(":")[0].removeprefix("transmute-"))
    for source in container.get("envFrom", []):
        env.update(maps[source["configMapRef"]["name"]])
    env.update({item["name"]: item["value"] for item in container.get("env", []) if "value" in item})
    return env


def _settings(env: dict[str, str]) -> Settings:
    """The Settings a process with this environment reads (values as pydantic parses them)."""
    fields = {name.removeprefix("TRANSMUTE_").lower(): value for name, value in env.items()}
    return Settings.model_validate(fields)


def _kinds(family: Family, env: dict[str, str]) -> list[str]:
    return [kind.name for kind in family.selected(_settings(env))]


# ---- schemas ---------------------------------------------------------------------------------


def _strict(schema: Any) -> Any:
    """A CRD schema that rejects unknown fields: the API server would silently prune them, which
    hides a misspelt field; kubernetes-validate's strict mode does the same for built-in kinds."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _strict(value) for key, value in schema.items()}
    if "properties" in out and "additionalProperties" not in out:
        if not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    return out


@cache
def _keda_validator() -> jsonschema.Draft7Validator:
    schema = _strict(json.loads((SCHEMAS / "keda-scaledobject-v1alpha1.json").read_text()))
    schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata", "spec"})
    schema["properties"]["apiVersion"] = {"const": KEDA_API}
    schema["properties"]["kind"] = {"const": "ScaledObject"}
    return jsonschema.Draft7Validator(schema)


@cache
def _compose_validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads((SCHEMAS / "compose-spec.json").read_text()))


def validate(doc: Doc) -> None:
    """Raise if ``doc`` breaks its schema (KEDA's for a ScaledObject, Kubernetes' otherwise)."""
    if doc["apiVersion"] == KEDA_API:
        _keda_validator().validate(doc)
    else:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


@pytest.mark.parametrize(("name", "doc"), list(_all_docs()), ids=[name for name, _ in _all_docs()])
def test_every_object_matches_its_schema(name: str, doc: Doc) -> None:
    validate(doc)


def test_the_validators_reject_what_they_should() -> None:
    deployment = copy.deepcopy(_of_kind(_builds()["k8s"], "Deployment")[0])
    _pod(deployment)["containers"][0]["readinessProbe"]["periodSecond"] = 5  # misspelt
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(deployment)
    scaled = copy.deepcopy(_of_kind(_builds()["k8s"], "ScaledObject")[0])
    scaled["spec"]["maxReplicas"] = 3  # KEDA's field is maxReplicaCount
    with pytest.raises(jsonschema.ValidationError):
        validate(scaled)
    compose = _compose()
    compose["services"]["gateway"]["stop_grace"] = "1s"
    with pytest.raises(jsonschema.ValidationError):
        _compose_validator().validate(compose)


def test_compose_matches_the_compose_spec() -> None:
    _compose_validator().validate(_compose())


def test_kustomizations_list_every_manifest() -> None:
    for directory in OVERLAYS:
        kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
        listed = {*kustomization["resources"], *(p["path"] for p in kustomization.get("patches", []))}
        files = {p.name for p in directory.glob("*.yaml")} - {"kustomization.yaml", "nats-values.yaml"}
        assert files == {entry for entry in listed if not entry.endswith("/")}, directory
        assert all((directory / entry).exists() for entry in listed)


# ---- cross-references --------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", list(_builds()))
def test_selectors_ports_and_probes_line_up(overlay: str) -> None:
    docs = _builds()[overlay]
    deployments = _of_kind(docs, "Deployment")
    for deployment in deployments:
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    for service in _of_kind(docs, "Service"):
        selector = service["spec"]["selector"]
        matched = [
            d for d in deployments if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(matched) == 1, f"Service {service['metadata']['name']} selects {len(matched)} Deployments"
        (container,) = _pod(matched[0])["containers"]
        names = {port["name"] for port in container["ports"]}
        assert {port["targetPort"] for port in service["spec"]["ports"]} <= names
    for deployment in deployments:
        (container,) = _pod(deployment)["containers"]
        ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            spec = container.get(probe)
            if spec is None:
                continue
            if "grpc" in spec:
                assert spec["grpc"]["port"] in ports.values()
                family = _family_of(deployment)
                assert family is not None and spec["grpc"].get("service", "") in ("", family.service_name)
            else:
                assert spec["httpGet"]["port"] in ports
        mounts = {mount["name"] for mount in container.get("volumeMounts", [])}
        assert mounts <= {volume["name"] for volume in _pod(deployment).get("volumes", [])}


def test_every_family_api_has_grpc_health_probes_and_the_gateway_http() -> None:
    for deployment in _of_kind(_builds()["k8s"], "Deployment"):
        (container,) = _pod(deployment)["containers"]
        role = _role(deployment)
        assert role in (*ROLES, "gateway")
        env = _env(_builds()["k8s"], deployment)
        if role == "api":
            port = int(env["TRANSMUTE_GRPC_PORT"])
            assert container["readinessProbe"]["grpc"]["port"] == port
            assert container["livenessProbe"]["grpc"]["port"] == port
            assert _settings(env).grpc_host == "0.0.0.0"  # reachable by the kubelet and the Service
        elif role == "gateway":
            assert container["readinessProbe"]["httpGet"]["path"] == "/health"
            assert _settings(env).http_host == "0.0.0.0"
            assert {p["containerPort"] for p in container["ports"]} == {_settings(env).http_port}


@pytest.mark.parametrize("overlay", list(_builds()))
def test_scaled_objects_scale_workers_on_the_consumers_the_worker_creates(overlay: str) -> None:
    docs = _builds()[overlay]
    deployments = {d["metadata"]["name"]: d for d in _of_kind(docs, "Deployment")}
    workers = {name for name, d in deployments.items() if _role(d) == "worker"}
    scaled = _of_kind(docs, "ScaledObject")
    assert sorted(s["spec"]["scaleTargetRef"]["name"] for s in scaled) == sorted(workers)
    for so in scaled:
        target = deployments[so["spec"]["scaleTargetRef"]["name"]]
        family = _family_of(target)
        assert family is not None
        kinds = _kinds(family, _env(docs, target))
        triggers = so["spec"]["triggers"]
        assert [t["name"] for t in triggers] == kinds
        for trigger, kind in zip(triggers, kinds, strict=True):
            meta = trigger["metadata"]
            assert trigger["type"] == "nats-jetstream"
            assert meta["stream"] == WORK_STREAM
            assert meta["consumer"] == work_consumer(family.name, kind)
            assert meta["account"] == NATS_ACCOUNT
            assert int(meta["lagThreshold"]) > 0
        formula = so["spec"].get("advanced", {}).get("scalingModifiers", {}).get("formula")
        if formula is not None:
            assert sorted(re.findall(r"[A-Za-z_]\w*", formula)) == sorted(kinds)


@pytest.mark.parametrize("overlay", list(_builds()))
def test_every_kind_has_exactly_one_worker_deployment(overlay: str) -> None:
    docs = _builds()[overlay]
    run: list[tuple[str, str]] = []
    for deployment in _of_kind(docs, "Deployment"):
        family = _family_of(deployment)
        if family is not None and _role(deployment) == "worker":
            run.extend((family.name, kind) for kind in _kinds(family, _env(docs, deployment)))
    expected = [(f.name, k.name) for f in FAMILIES.values() for k in f.kinds]
    assert sorted(run) == sorted(expected)


def test_the_gpu_overlay_puts_only_speech_on_gpu_nodes() -> None:
    docs = _builds()["k8s/gpu-speech"]
    (gpu,) = [d for d in _of_kind(docs, "Deployment") if "nodeSelector" in _pod(d)]
    (container,) = _pod(gpu)["containers"]
    settings = _settings(_env(docs, gpu))
    assert _kinds(INTELLIGENCE, _env(docs, gpu)) == ["speech"]
    assert settings.whisper_device == "cuda"
    assert int(container["resources"]["limits"]["nvidia.com/gpu"]) == 1
    assert container["image"].split(":")[0] == "transmute-intelligence-gpu"
    assert _pod(gpu)["tolerations"]


def _env_names() -> Iterator[tuple[str, str]]:
    for name, doc in _all_docs():
        if doc["kind"] == "ConfigMap":
            yield from ((name, key) for key in doc.get("data", {}))
        if doc["kind"] == "Deployment":
            for container in _pod(doc)["containers"]:
                yield from ((name, item["name"]) for item in container.get("env", []))
    for service_name, service in _compose()["services"].items():
        yield from ((f"compose:{service_name}", key) for key in service.get("environment", {}))
    for stage, instruction, args in _dockerfile():
        if instruction == "ENV":
            yield from (
                (f"Dockerfile:{stage}", key) for key in _env_keys(args) if key.startswith("TRANSMUTE_")
            )


def test_every_transmute_variable_is_a_setting() -> None:
    names = list(_env_names())
    assert len(names) > 50
    unknown = [
        (where, name)
        for where, name in names
        if not (name.startswith("TRANSMUTE_") and name[10:].lower() in Settings.model_fields)
    ]
    assert unknown == []


@pytest.mark.parametrize("overlay", list(_builds()))
def test_termination_grace_covers_the_shutdown_and_the_task_lease(overlay: str) -> None:
    docs = _builds()[overlay]
    for deployment in _of_kind(docs, "Deployment"):
        settings = _settings(_env(docs, deployment))
        grace = _pod(deployment)["terminationGracePeriodSeconds"]
        (container,) = _pod(deployment)["containers"]
        if _role(deployment) == "worker":
            assert grace == settings.shutdown_grace_seconds + settings.ack_wait_seconds
        else:
            pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
            assert grace > pre_stop + settings.shutdown_grace_seconds


def test_addresses_and_the_nats_url_point_at_real_services() -> None:
    docs = _builds()["k8s"]
    (config,) = _of_kind(docs, "ConfigMap")
    services = {
        (s["metadata"]["name"], p["port"]) for s in _of_kind(docs, "Service") for p in s["spec"]["ports"]
    }
    for family in FAMILIES.values():
        host, port = config["data"][f"TRANSMUTE_{family.name.upper()}_ADDR"].rsplit(":", 1)
        assert (host, int(port)) in services
    values = yaml.safe_load((K8S / "nats-values.yaml").read_text())
    fullname = values["fullnameOverride"]
    assert config["data"]["TRANSMUTE_NATS_URL"].startswith(f"nats://{fullname}.")
    assert int(config["data"]["TRANSMUTE_NATS_REPLICAS"]) == min(3, values["config"]["cluster"]["replicas"])
    endpoint = f"{fullname}-headless.nats.svc.cluster.local:{values['config']['monitor']['port']}"
    for _, doc in _all_docs():
        if doc["kind"] == "ScaledObject":
            assert {t["metadata"]["natsServerMonitoringEndpoint"] for t in doc["spec"]["triggers"]} == {
                endpoint
            }


def _value_paths(values: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(values, dict) and values:
        for key, value in values.items():
            yield from _value_paths(value, f"{prefix}.{key}" if prefix else key)
    else:
        yield prefix


def test_nats_values_are_the_charts_and_make_a_jetstream_cluster() -> None:
    chart = yaml.safe_load((SCHEMAS / "nats-chart-values.yaml").read_text())
    known = set(_value_paths(chart))
    free = {path for path in known if _lookup(chart, path) == {}}  # maps the chart passes through
    values = yaml.safe_load((K8S / "nats-values.yaml").read_text())
    for path in _value_paths(values):
        assert path in known or any(path.startswith(f"{f}.") for f in free), path
    cluster, jetstream = values["config"]["cluster"], values["config"]["jetstream"]
    assert cluster["enabled"] and cluster["replicas"] == 3
    assert (
        jetstream["enabled"]
        and jetstream["fileStore"]["enabled"]
        and jetstream["fileStore"]["pvc"]["enabled"]
    )


def _lookup(values: Any, path: str) -> Any:
    for key in path.split("."):
        values = values[key]
    return values


def test_secrets_referenced_are_documented() -> None:
    readme = (DEPLOY / "README.md").read_text()
    keys = set()
    for _, doc in _all_docs():
        if doc["kind"] == "Deployment":
            for container in _pod(doc)["containers"]:
                for item in container.get("env", []):
                    ref = item.get("valueFrom", {}).get("secretKeyRef")
                    if ref:
                        keys.add((ref["name"], ref["key"]))
            for volume in _pod(doc).get("volumes", []):
                if "secret" in volume:
                    keys.update((volume["secret"]["secretName"], i["key"]) for i in volume["secret"]["items"])
    assert keys
    for name, key in keys:
        assert name in readme and key in readme


# ---- Dockerfile and compose --------------------------------------------------------------------


@cache
def _dockerfile_text() -> str:
    return (ROOT / "Dockerfile").read_text()


def _dockerfile() -> list[tuple[str, str, str]]:
    """(stage, INSTRUCTION, arguments) per instruction; continuation lines joined."""
    text = re.sub(r"\\\n", " ", _dockerfile_text())
    out, stage = [], ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, args = line.partition(" ")
        if instruction.upper() == "FROM":
            stage = args.split()[-1] if " AS " in args.upper() else ""
        out.append((stage, instruction.upper(), args.strip()))
    return out


def _env_keys(args: str) -> list[str]:
    return [part.split("=", 1)[0] for part in shlex.split(args) if "=" in part]


def _image_env(target: str) -> dict[str, str]:
    """The TRANSMUTE_* variables a Dockerfile target sets, its base stages' included."""
    parents: dict[str, str] = {}
    env: dict[str, dict[str, str]] = {}
    for stage, instruction, args in _dockerfile():
        if instruction == "FROM":
            parents[stage] = args.split()[0]
        elif instruction == "ENV":
            pairs = (part.split("=", 1) for part in shlex.split(args) if "=" in part)
            env.setdefault(stage, {}).update({k: v for k, v in pairs if k.startswith("TRANSMUTE_")})
    chain = [target]
    while chain[-1] in parents:
        chain.append(parents[chain[-1]])
    merged: dict[str, str] = {}
    for stage in reversed(chain):
        merged.update(env.get(stage, {}))
    return merged


def _targets() -> set[str]:
    return {stage for stage, instruction, _ in _dockerfile() if instruction == "FROM"}


def test_dockerfile_targets_serve_every_image_and_entry_point() -> None:
    targets = _targets()
    assert {"gateway", *FAMILIES, "intelligence-gpu"} <= targets
    for stage, instruction, args in _dockerfile():
        if instruction == "ENTRYPOINT":
            argv = json.loads(args)
            assert argv[:2] == ["python", "-m"] and importlib.util.find_spec(argv[2]) is not None
            assert argv[2].removesuffix("_service") == stage
        if instruction == "CMD":
            argv = json.loads(args)
            assert argv[0] == "--role" and argv[1] in ROLES
    images = {c["image"] for _, d in _all_docs() if d["kind"] == "Deployment" for c in _pod(d)["containers"]}
    for image in images:
        assert image.split(":")[0].removeprefix("transmute-") in targets, image
    for name, service in _compose()["services"].items():
        if "build" in service:
            target = service["build"]["target"]
            assert target in targets, name
            assert (DEPLOY / service["build"]["context"] / "Dockerfile").resolve() == ROOT / "Dockerfile"
            assert service["image"].split(":")[0] == f"transmute-{target}"


def test_dockerfile_copies_what_exists_and_is_not_ignored() -> None:
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copies = [
        args for _, instruction, args in _dockerfile() if instruction == "COPY" and "--from" not in args
    ]
    assert copies
    for args in copies:
        *sources, _ = args.split()
        for source in sources:
            assert (ROOT / source).exists(), source
            assert not any(
                fnmatch(source, pattern) or source.startswith(f"{pattern}/") for pattern in ignored
            )


def test_compose_runs_each_family_role_and_reaches_what_it_names() -> None:
    compose = _compose()
    services = compose["services"]
    for family in FAMILIES.values():
        assert services[f"{family.name}-api"]["command"] == ["--role", "api"]
        assert services[f"{family.name}-worker"]["command"] == ["--role", "worker"]
    for name, service in services.items():
        env = service.get("environment", {})
        for key, value in env.items():
            if key.endswith("_ADDR"):
                assert value.split(":")[0] in services, (name, key)
        if env and name.endswith("-worker"):
            literal = {k: v for k, v in env.items() if "${" not in str(v)}
            settings = _settings(literal)
            assert (
                service["stop_grace_period"]
                == f"{settings.shutdown_grace_seconds + settings.ack_wait_seconds:g}s"
            )
        for volume in service.get("volumes", []):
            assert volume.split(":")[0] in compose["volumes"]


def test_the_file_backend_is_a_shared_mount_wherever_it_is_used() -> None:
    compose = _compose()
    for name, service in compose["services"].items():
        env = {k: v for k, v in service.get("environment", {}).items() if "${" not in str(v)}
        if env.get("TRANSMUTE_STORAGE_BACKEND") == "file":
            mounts = {v.split(":")[1]: v.split(":")[0] for v in service["volumes"]}
            assert mounts.get(str(_settings(env).storage_dir)) == "storage", name
    for _, doc in _all_docs():
        if doc["kind"] == "Deployment":
            docs = next(d for d in _builds().values() if doc in d)
            settings = _settings(_env(docs, doc))
            (container,) = _pod(doc)["containers"]
            paths = {m["mountPath"] for m in container.get("volumeMounts", [])}
            assert settings.storage_backend != "file" or str(settings.storage_dir) in paths
            assert settings.work_dir is None or str(settings.work_dir) in paths


def test_the_model_bake_step_of_the_intelligence_image_runs(tmp_path: Path) -> None:
    """The Dockerfile's own command, run here: it joins, verifies and loads both models."""
    (bake,) = [
        args
        for stage, instruction, args in _dockerfile()
        if stage == "intelligence" and instruction == "RUN" and args.startswith("python -c")
    ]
    argv = shlex.split(bake)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRANSMUTE_")}
    env["TRANSMUTE_MODEL_CACHE_DIR"] = str(tmp_path)
    subprocess.run([sys.executable, *argv[1:]], check=True, env=env, cwd=ROOT, timeout=300)
    assert sha256_file(tmp_path / MODEL_NAME / "model.bin") == MODEL_SHA256
