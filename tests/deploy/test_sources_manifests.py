"""knative/sources/: `mutt syslog` as a Deployment + SinkBinding + Service, checked like
knative/base (strict schemas, no cluster) and wired to what it points at.

Schemas: the Deployment against ``k8s-core-subset.schema.yaml``; the SinkBinding
against Knative Eventing's own CRD (``eventing-134b20d-sinkbinding.yaml``, the
unmodified ``config/core/resources/sinkbindings.yaml`` of knative/eventing at
commit 134b20d99ba9, made strict the way ``kube.py`` makes every CRD strict); the
core ``v1`` Service against the hand-written ``k8s-service-subset.schema.yaml``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import io
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft4Validator

from mutt.commands import sources as sources_command
from tests.support import kube

SOURCES = kube.KNATIVE / "sources"
MANIFEST = SOURCES / "syslog.yaml"
SINKBINDING_CRD = "eventing-134b20d-sinkbinding.yaml"
SERVICE_SCHEMA = "k8s-service-subset.schema.yaml"
SECRETS_DIR = "/var/run/secrets/mutt"


@functools.cache
def _sinkbinding_validator() -> Draft4Validator:
    crd = kube.load_yaml(kube.SCHEMAS / SINKBINDING_CRD)
    assert (crd["spec"]["group"], crd["spec"]["names"]["kind"]) == (
        "sources.knative.dev",
        "SinkBinding",
    )
    (entry,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    assert entry["served"] and entry["storage"]
    root = kube._strict(entry["schema"]["openAPIV3Schema"], "SinkBinding", ())
    props = dict(root["properties"])
    props.pop("status", None)  # set by the controller, never by a manifest
    props["apiVersion"] = {"enum": ["sources.knative.dev/v1"]}
    props["kind"] = {"enum": ["SinkBinding"]}
    props["metadata"] = {"$ref": "#/definitions/ObjectMeta"}
    root["properties"] = props
    root["required"] = ["apiVersion", "kind", "metadata", "spec"]
    root["additionalProperties"] = False
    root["definitions"] = kube.core_schema()["definitions"]
    Draft4Validator.check_schema(root)
    return Draft4Validator(root)


@functools.cache
def _service_validator() -> Draft4Validator:
    schema = copy.deepcopy(kube.load_yaml(kube.SCHEMAS / SERVICE_SCHEMA))
    schema["definitions"] = kube.core_schema()["definitions"]
    Draft4Validator.check_schema(schema)
    return Draft4Validator(schema)


def schema_errors(doc: kube.Doc) -> list[str]:
    """Every way ``doc`` breaks its strict schema (the kinds knative/sources uses)."""
    kind = (doc.get("apiVersion"), doc.get("kind"))
    if kind == ("sources.knative.dev/v1", "SinkBinding"):
        validator = _sinkbinding_validator()
    elif kind == ("v1", "Service"):
        validator = _service_validator()
    else:
        return kube.schema_errors(doc)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    return [f"/{'/'.join(str(p) for p in e.absolute_path)}: {e.message}" for e in errors]


@pytest.fixture(scope="module")
def docs() -> list[kube.Doc]:
    return kube.load_docs(MANIFEST)


@pytest.fixture(scope="module")
def rendered() -> list[kube.Doc]:
    return kube.render(SOURCES)


def the(docs: list[kube.Doc], api_version: str, kind: str) -> kube.Doc:
    (doc,) = [d for d in docs if (d["apiVersion"], d["kind"]) == (api_version, kind)]
    return doc


def container(deployment: kube.Doc) -> dict[str, Any]:
    (c,) = deployment["spec"]["template"]["spec"]["containers"]
    return c  # type: ignore[no-any-return]


def parse_command(argv: list[str]) -> argparse.Namespace:
    """``mutt ...`` with the parser that has ``syslog`` (mutt's own once it is registered)."""
    assert argv[0] == "mutt", argv
    try:
        return kube.parse_mutt(argv)
    except kube.ManifestError:
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                return sources_command.build_parser().parse_args(argv[1:])
            except SystemExit:
                pytest.fail(f"{argv} is not a valid mutt command: {err.getvalue().strip()}")


def test_every_document_matches_its_strict_schema(
    docs: list[kube.Doc], rendered: list[kube.Doc]
) -> None:
    assert {(d["apiVersion"], d["kind"]) for d in docs} == {
        ("apps/v1", "Deployment"),
        ("sources.knative.dev/v1", "SinkBinding"),
        ("v1", "Service"),
    }
    for doc in [*docs, *rendered]:
        assert schema_errors(doc) == [], f"{doc['kind']}/{doc['metadata']['name']}"


@pytest.mark.parametrize(
    ("api_version", "kind", "path", "wrong"),
    [
        ("sources.knative.dev/v1", "SinkBinding", ["spec", "subject"], "subjet"),
        ("sources.knative.dev/v1", "SinkBinding", ["spec", "sink", "ref"], "reference"),
        ("v1", "Service", ["spec", "selector"], "selecter"),
        ("v1", "Service", ["spec", "ports", 0, "targetPort"], "target_port"),
        ("apps/v1", "Deployment", ["spec", "template", "spec", "containers"], "contianers"),
    ],
)
def test_a_misspelt_field_fails(
    docs: list[kube.Doc], api_version: str, kind: str, path: list[str | int], wrong: str
) -> None:
    doc = copy.deepcopy(the(docs, api_version, kind))
    node: Any = doc
    for part in path[:-1]:
        node = node[part]
    node[wrong] = node.pop(path[-1])
    assert any(repr(wrong) in e for e in schema_errors(doc)), schema_errors(doc)


def test_the_container_runs_mutt_syslog_on_the_ports_it_declares(docs: list[kube.Doc]) -> None:
    deployment = the(docs, "apps/v1", "Deployment")
    c = container(deployment)
    assert c["command"] == ["mutt"]
    args = parse_command([*c["command"], *c["args"]])
    assert args.command == "syslog" and args.host == "0.0.0.0"
    assert not args.no_udp and not args.no_tcp
    ports = {(p.get("protocol", "TCP"), p["containerPort"]) for p in c["ports"]}
    assert {("UDP", args.udp_port), ("TCP", args.tcp_port), ("TCP", args.health_port)} == ports
    assert min(args.udp_port, args.tcp_port) > 1024, "unprivileged ports: the pod runs as non-root"
    for probe in ("readinessProbe", "livenessProbe"):
        # /healthz, not /readyz: a pod must keep receiving while ingest is away
        assert c[probe]["httpGet"] == {"path": "/healthz", "port": args.health_port}
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > args.grace + args.timeout, "SIGTERM must leave time to flush the buffer"


def test_the_ingest_url_comes_from_the_sinkbinding(docs: list[kube.Doc]) -> None:
    deployment = the(docs, "apps/v1", "Deployment")
    binding = the(docs, "sources.knative.dev/v1", "SinkBinding")["spec"]
    assert binding["subject"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    c = container(deployment)
    assert "--ingest-url" not in c["args"], "K_SINK (injected by the SinkBinding) is the URL"
    ref = binding["sink"]["ref"]
    assert (ref["apiVersion"], ref["kind"]) == ("serving.knative.dev/v1", "Service")
    base = kube.render(kube.KUSTOMIZATIONS["base"])
    assert kube.one(base, "Service", ref["name"]), "the sink is the ingest Knative Service"


def test_the_service_reaches_the_pods_on_both_protocols(docs: list[kube.Doc]) -> None:
    deployment = the(docs, "apps/v1", "Deployment")
    service = the(docs, "v1", "Service")["spec"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["selector"].items() <= pod_labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    by_name = {p["name"]: p for p in container(deployment)["ports"]}
    exposed = set()
    for port in service["ports"]:
        target = by_name[port["targetPort"]] if isinstance(port["targetPort"], str) else None
        target_port = target["containerPort"] if target else port["targetPort"]
        protocol = port.get("protocol", "TCP")
        assert (protocol, target_port) in {
            (p.get("protocol", "TCP"), p["containerPort"]) for p in by_name.values()
        }
        exposed.add((protocol, port["port"]))
    assert exposed == {("UDP", 514), ("TCP", 514)}


def test_settings_secrets_and_security_follow_the_base(docs: list[kube.Doc]) -> None:
    deployment = the(docs, "apps/v1", "Deployment")
    c = container(deployment)
    env = kube.env_of(c)
    kube.check_env(env, "knative/sources/syslog.yaml")
    assert env["MUTT_SECRETS_DIR"] == SECRETS_DIR  # ingest_api_keys → X-API-KEY
    # Redis only to publish its counters for `mutt status`; never PostgreSQL
    assert env["MUTT_REDIS_URL"] == {
        "secretKeyRef": {"name": "mutt-connection", "key": "redis-url"}
    }
    assert "MUTT_DATABASE_URL" not in env
    (mount,) = c["volumeMounts"]
    (volume,) = deployment["spec"]["template"]["spec"]["volumes"]
    assert (mount["mountPath"], mount["readOnly"], mount["name"]) == (
        SECRETS_DIR,
        True,
        volume["name"],
    )
    assert volume["secret"]["secretName"] == "mutt-secrets"
    security = c["securityContext"]
    assert security["runAsNonRoot"] is True and security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"] and "runAsUser" not in security
    assert {"cpu", "memory"} <= set(c["resources"]["limits"])


def test_the_rendering_uses_the_base_image_and_namespace(rendered: list[kube.Doc]) -> None:
    base = kube.render(kube.KUSTOMIZATIONS["base"])
    base_images = {c["image"] for d in base for c in kube.containers(d)}
    images = {c["image"] for d in rendered for c in kube.containers(d)}
    assert images == base_images
    assert {d["metadata"]["namespace"] for d in rendered} == {"mutt"}
    for doc in rendered:
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "mutt"


def test_the_docs_apply_this_kustomization() -> None:
    text = (kube.ROOT / "docs" / "sources.md").read_text()
    assert "kubectl apply -k knative/sources" in text
    assert Path(SOURCES / "kustomization.yaml").is_file()


def test_every_shipped_ingest_takes_the_batches_mutt_syslog_sends() -> None:
    """Batches are ingest's default; no manifest or env file may turn them off (nor needs to
    turn them on): a refusing ingest slows `mutt syslog` to one event per request."""
    base = kube.render(kube.KUSTOMIZATIONS["base"])
    ingest = kube.one(base, "Service", "ingest")
    found = {"knative/base ingest": kube.env_of(next(kube.containers(ingest)))}
    for path in ("local/mutt.env", "deploy/rhel/mutt.env"):
        lines = (kube.ROOT / path).read_text().splitlines()
        found[path] = dict(
            line.split("=", 1) for line in lines if "=" in line and not line.startswith("#")
        )
    for where, env in found.items():
        assert "MUTT_INGEST_CLOUDEVENTS_BATCH" not in env, f"{where}: the default (true) is right"
