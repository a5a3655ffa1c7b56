"""knative/: every manifest against its CRD (strict), and the wiring between them."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from mutt.stages import HTTP_FUNCTIONS, WORKER_STAGES
from shared.models import (
    TYPE_ACCEPTED,
    TYPE_ALERT,
    TYPE_PING,
    JanitorRequest,
)
from shared.single_event import INNER, PACKED
from tests.support import kube

# What each function emits as its reply, and what it takes
# (shared/models.py, docs/architecture.md "Events").
# A packed reply (shared/single_event.py) is filtered on its inner type too.
PACKED_ALERTS = f"{PACKED}[{INNER}={TYPE_ALERT}]"
# Delivery reports go to their stream, never back to a Broker (shared/single_event.py).
EMITS = {"ingest": {TYPE_ACCEPTED}, "alert": {TYPE_ALERT, PACKED_ALERTS}, "forward": set()}
CONSUMES = {
    "alert": {TYPE_ACCEPTED},
    "forward": {TYPE_ALERT, PACKED_ALERTS},
    "janitor": {TYPE_PING},
}
# The audit writer has an HTTP entry (for `mutt relay --to audit=URL`), but on
# Knative it runs always-on as a stream worker Deployment (knative/base/audit.yaml):
# big COPY batches need a consumer, not a request per event.
FUNCTIONS = set(HTTP_FUNCTIONS) - {"audit"}
INTERNAL = {"alert", "forward", "janitor", "admin"}
SECRETS_DIR = "/var/run/secrets/mutt"
SECRET_NAMES = {"mutt-connection", "mutt-secrets"}
KAFKA_INGRESS = "kafka-broker-ingress.knative-eventing.svc.cluster.local"

AUTOSCALING = "autoscaling.knative.dev/"
NON_NEGATIVE_INT = re.compile(r"^(0|[1-9][0-9]*)$")
POSITIVE_NUMBER = re.compile(r"^(0|[1-9][0-9]*)(\.[0-9]+)?$")
DURATION = re.compile(r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$")
# Knative's autoscaling annotations (per revision) and what a value must look like.
ANNOTATION_VALUES = {
    "min-scale": NON_NEGATIVE_INT,
    "max-scale": NON_NEGATIVE_INT,
    "initial-scale": NON_NEGATIVE_INT,
    "activation-scale": NON_NEGATIVE_INT,
    "target": POSITIVE_NUMBER,
    "target-utilization-percentage": POSITIVE_NUMBER,
    "metric": re.compile(r"^(concurrency|rps|cpu|memory)$"),
    "class": re.compile(r"^(kpa|hpa)\.autoscaling\.knative\.dev$"),
    "window": DURATION,
    "scale-down-delay": DURATION,
    "scale-to-zero-pod-retention-period": DURATION,
}
ISO_DURATION = re.compile(r"^PT(?=[0-9])([0-9]+H)?([0-9]+M)?([0-9]+(\.[0-9]+)?S)?$")


@pytest.fixture(scope="module", params=sorted(kube.KUSTOMIZATIONS))
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[kube.Doc]]:
    return request.param, kube.render(kube.KUSTOMIZATIONS[request.param])


def services(docs: list[kube.Doc]) -> dict[str, kube.Doc]:
    return {d["metadata"]["name"]: d for d in kube.find(docs, "Service")}


def container(doc: kube.Doc) -> dict[str, Any]:
    (c,) = doc["spec"]["template"]["spec"]["containers"]
    return c  # type: ignore[no-any-return]


def argv(c: dict[str, Any]) -> list[str]:
    return [*c.get("command", []), *c.get("args", [])]


def option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def manifest_files() -> list[Path]:
    """Every manifest in knative/: not the kustomizations, not the patches."""
    patches = {
        (d / p["path"]).resolve()
        for d in kube.KUSTOMIZATIONS.values()
        for p in kube.load_yaml(d / "kustomization.yaml").get("patches", [])
    }
    return sorted(
        p
        for p in kube.KNATIVE.rglob("*.yaml")
        if p.name != "kustomization.yaml"
        and p.resolve() not in patches
        and kube.KNATIVE / "sources" not in p.parents  # validated by test_sources_manifests.py
    )


# ------------------------------------------------------------------ schemas


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: str(p.relative_to(kube.KNATIVE)))
def test_every_manifest_file_matches_its_schema(path: Path) -> None:
    docs = kube.load_docs(path)
    assert docs, f"{path} is empty"
    for doc in docs:
        kube.validate(doc, str(path))


def test_every_rendered_manifest_matches_its_schema(rendered: tuple[str, list[kube.Doc]]) -> None:
    name, docs = rendered
    for doc in docs:
        kube.validate(doc, name)


def test_every_manifest_file_is_in_a_kustomization() -> None:
    used: set[Path] = set()
    for directory in kube.KUSTOMIZATIONS.values():
        for entry in kube.load_yaml(directory / "kustomization.yaml")["resources"]:
            used.add((directory / entry).resolve())
    orphans = [p for p in manifest_files() if p.resolve() not in used]
    assert not orphans, f"manifests no kustomization applies: {orphans}"


def test_manifests_use_the_crd_storage_version(rendered: tuple[str, list[kube.Doc]]) -> None:
    for doc in rendered[1]:
        group, _, version = doc["apiVersion"].rpartition("/")
        if (group, doc["kind"]) in kube.CRD_FILES:
            assert kube.crd_version(group, doc["kind"], version).get("storage"), doc["kind"]


def _ingest(docs: list[kube.Doc]) -> kube.Doc:
    return copy.deepcopy(kube.one(docs, "Service", "ingest"))


def _typo(doc: kube.Doc, path: list[str | int], wrong: str) -> kube.Doc:
    node: Any = doc
    for part in path[:-1]:
        node = node[part]
    node[wrong] = node.pop(path[-1])
    return doc


TYPOS = [
    ("Service", "ingest", ["spec", "template", "spec", "containers"], "contianers"),
    ("Service", "ingest", ["spec", "template", "spec", "containerConcurrency"], "concurrency"),
    ("Service", "ingest", ["spec", "template", "spec", "containers", 0, "env"], "envs"),
    (
        "Service",
        "ingest",
        ["spec", "template", "spec", "containers", 0, "readinessProbe", "httpGet"],
        "httpget",
    ),
    ("Service", "alert", ["metadata", "labels"], "lables"),
    ("Deployment", "relay", ["spec", "template", "spec", "containers"], "contianers"),
    ("Deployment", "relay", ["spec", "template", "spec", "containers", 0, "args"], "arg"),
    ("Job", "mutt-db-migrate", ["spec", "template", "spec", "restartPolicy"], "restartpolicy"),
    ("PingSource", "janitor-ping", ["spec", "schedule"], "schedul"),
    ("Broker", "mutt", ["spec", "delivery", "retry"], "retries"),
    ("Trigger", "alert", ["spec", "subscriber"], "subscribr"),
    ("Trigger", "alert", ["spec", "filter", "attributes"], "attribute"),
    ("KafkaSink", "mutt-dead-letter", ["spec", "topic"], "topics"),
]


@pytest.mark.parametrize(
    ("kind", "name", "path", "wrong"), TYPOS, ids=[f"{t[0]}-{t[3]}" for t in TYPOS]
)
def test_a_misspelt_field_fails_validation(
    kind: str, name: str, path: list[str | int], wrong: str
) -> None:
    docs = kube.render(kube.KUSTOMIZATIONS["broker"])
    good = copy.deepcopy(kube.one(docs, kind, name))
    assert kube.schema_errors(good) == []
    errors = kube.schema_errors(_typo(good, path, wrong))
    assert any(repr(wrong) in e for e in errors), errors
    with pytest.raises(kube.ManifestError, match=wrong):
        kube.validate(good)


def test_the_crds_alone_would_keep_some_typos() -> None:
    """Why strict mode: the Trigger CRD preserves unknown fields in spec, so the API
    server would accept `subscribr` and the Trigger would silently have no subscriber."""
    entry = kube.crd_version("eventing.knative.dev", "Trigger", "v1")
    spec = entry["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec.get("x-kubernetes-preserve-unknown-fields") is True


def test_wrong_value_types_fail_validation() -> None:
    docs = kube.render(kube.KUSTOMIZATIONS["base"])
    svc = _ingest(docs)
    svc["spec"]["template"]["spec"]["containerConcurrency"] = "16"
    assert kube.schema_errors(svc)
    svc = _ingest(docs)
    svc["spec"]["template"]["metadata"]["annotations"][AUTOSCALING + "min-scale"] = 0
    assert kube.schema_errors(svc)
    svc = _ingest(docs)
    container(svc)["ports"][0]["containerPort"] = "8080"
    assert kube.schema_errors(svc)


def test_the_renderer_refuses_kustomize_fields_it_does_not_render(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "resources: [svc.yaml]\ncommonLabels: {a: b}\n"
    )
    with pytest.raises(kube.ManifestError, match="commonLabels"):
        kube.render(tmp_path)


def test_unknown_kinds_have_no_schema() -> None:
    with pytest.raises(kube.ManifestError, match="no CRD schema"):
        kube.validate({"apiVersion": "sources.knative.dev/v1", "kind": "ApiServerSource"})


# ------------------------------------------------------------------ Services


def test_one_service_per_function(rendered: tuple[str, list[kube.Doc]]) -> None:
    assert set(services(rendered[1])) == FUNCTIONS


def scaling_problems(svc: kube.Doc) -> list[str]:
    """What is wrong with a Service's autoscaling and concurrency (empty: nothing)."""
    problems: list[str] = []
    template = svc["spec"]["template"]
    annotations = template.get("metadata", {}).get("annotations", {})
    for key, value in annotations.items():
        short = key.removeprefix(AUTOSCALING)
        if not key.startswith(AUTOSCALING) or short not in ANNOTATION_VALUES:
            problems.append(f"unknown annotation {key}")
        elif not isinstance(value, str) or not ANNOTATION_VALUES[short].match(value):
            problems.append(f"{key}={value!r} is not a valid value")
    if problems:
        return problems
    if any(k.startswith(AUTOSCALING) for k in svc["metadata"].get("annotations", {})):
        problems.append("autoscaling annotations belong on spec.template, not the Service")
    low = annotations.get(AUTOSCALING + "min-scale")
    high = annotations.get(AUTOSCALING + "max-scale")
    target = annotations.get(AUTOSCALING + "target")
    if low != "0":
        problems.append(f"min-scale {low!r}: the functions scale to zero")
    if high is None or target is None:
        return [*problems, "max-scale and target are required"]
    if int(high) < 1 or int(low or 0) > int(high):
        problems.append(f"min-scale {low} > max-scale {high}")
    concurrency = template["spec"].get("containerConcurrency", 0)
    if not 0 < float(target) <= concurrency:
        problems.append(f"target {target} outside (0, containerConcurrency {concurrency}]")
    env = kube.env_of(container(svc))
    if env.get("THREADS") != str(concurrency):
        problems.append(f"THREADS {env.get('THREADS')} != containerConcurrency {concurrency}")
    if env.get("WORKERS") != "1":
        problems.append("WORKERS must be 1: containerConcurrency counts one process's threads")
    return problems


def test_services_scale_to_zero_and_concurrency_equals_threads(
    rendered: tuple[str, list[kube.Doc]],
) -> None:
    for name, svc in services(rendered[1]).items():
        assert scaling_problems(svc) == [], name


SCALING_MISTAKES = [
    ("min-scale", "3", "min-scale '3'"),
    ("max-scale", "ten", "is not a valid value"),
    ("max-scale", 10, "is not a valid value"),
    ("min-scal", "0", "unknown annotation"),
    ("minScale", "0", "unknown annotation"),
    ("target", "100", "outside (0, containerConcurrency"),
]


@pytest.mark.parametrize(("key", "value", "expected"), SCALING_MISTAKES)
def test_the_scaling_check_catches_mistakes(key: str, value: object, expected: str) -> None:
    svc = _ingest(kube.render(kube.KUSTOMIZATIONS["base"]))
    svc["spec"]["template"]["metadata"]["annotations"][AUTOSCALING + key] = value
    assert any(expected in p for p in scaling_problems(svc)), scaling_problems(svc)


def test_the_scaling_check_catches_min_above_max_and_threads_mismatch() -> None:
    svc = _ingest(kube.render(kube.KUSTOMIZATIONS["base"]))
    annotations = svc["spec"]["template"]["metadata"]["annotations"]
    annotations[AUTOSCALING + "max-scale"] = "0"
    assert any("> max-scale" in p for p in scaling_problems(svc))
    svc = _ingest(kube.render(kube.KUSTOMIZATIONS["base"]))
    svc["spec"]["template"]["spec"]["containerConcurrency"] = 4
    assert any("THREADS 16 != containerConcurrency 4" in p for p in scaling_problems(svc))


def test_services_serve_their_function_on_8080(rendered: tuple[str, list[kube.Doc]]) -> None:
    for name, svc in services(rendered[1]).items():
        c = container(svc)
        args = kube.parse_mutt(argv(c))
        assert (args.command, args.function) == ("serve", name)
        assert args.host == "0.0.0.0"
        assert [p["containerPort"] for p in c["ports"]] == [8080] == [args.port]
        assert c["ports"][0].get("name", "http1") in ("http1", "h2c")


def test_services_probe_healthz(rendered: tuple[str, list[kube.Doc]]) -> None:
    for name, svc in services(rendered[1]).items():
        c = container(svc)
        spec = svc["spec"]["template"]["spec"]
        for probe in ("readinessProbe", "livenessProbe"):
            get = c[probe]["httpGet"]
            assert get["path"] == "/healthz", f"{name} {probe}"
            assert get.get("port", 8080) == 8080, f"{name} {probe}"
        # A pod whose threads are all busy with requests still within the
        # request timeout must not be killed for not answering its probe.
        live = c["livenessProbe"]
        tolerance = live.get("periodSeconds", 10) * live.get("failureThreshold", 3)
        assert tolerance >= spec["timeoutSeconds"], f"{name}: liveness kills busy pods"


def test_services_have_resources_and_run_unprivileged(
    rendered: tuple[str, list[kube.Doc]],
) -> None:
    for name, svc in services(rendered[1]).items():
        c = container(svc)
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(c["resources"][bound]), f"{name} {bound}"
        ctx = c["securityContext"]
        assert ctx["runAsNonRoot"] is True and ctx["allowPrivilegeEscalation"] is False
        assert "runAsUser" not in ctx, f"{name}: OpenShift assigns the UID"
        assert ctx["capabilities"]["drop"] == ["ALL"]


def test_secrets_are_mounted_as_files_and_urls_come_from_a_secret(
    rendered: tuple[str, list[kube.Doc]],
) -> None:
    pods = [*services(rendered[1]).values(), *kube.find(rendered[1], "Deployment")]
    for doc in pods:
        name = doc["metadata"]["name"]
        c = container(doc)
        env = kube.env_of(c)
        assert env["MUTT_SECRETS_DIR"] == SECRETS_DIR, name
        mounts = {m["name"]: m for m in c["volumeMounts"]}
        volumes = {v["name"]: v for v in doc["spec"]["template"]["spec"]["volumes"]}
        mount = next(m for m in mounts.values() if m["mountPath"] == SECRETS_DIR)
        assert mount.get("readOnly") is True, name
        assert volumes[mount["name"]]["secret"]["secretName"] == "mutt-secrets", name
    for doc in rendered[1]:
        for c in kube.containers(doc):
            env = kube.env_of(c)
            for url in ("MUTT_REDIS_URL", "MUTT_DATABASE_URL"):
                ref = env[url]
                assert isinstance(ref, dict), f"{doc['metadata']['name']}: {url} is a literal"
                assert ref["secretKeyRef"]["name"] == "mutt-connection"


def test_only_documented_secrets_are_referenced(rendered: tuple[str, list[kube.Doc]]) -> None:
    doc_text = (kube.ROOT / "docs" / "deploy-knative.md").read_text()
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "secretKeyRef":
                    found.add(value["name"])
                elif key == "secret" and "secretName" in value:
                    found.add(value["secretName"])
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(rendered[1])
    assert found == SECRET_NAMES
    for name in found:
        assert f"create secret generic {name}" in doc_text, f"docs do not create {name}"


def test_internal_functions_are_cluster_local(rendered: tuple[str, list[kube.Doc]]) -> None:
    for name, svc in services(rendered[1]).items():
        visibility = svc["metadata"].get("labels", {}).get("networking.knative.dev/visibility")
        assert visibility == ("cluster-local" if name in INTERNAL else None), name


# ------------------------------------------------------------------ every container


def test_every_command_is_a_real_mutt_subcommand(rendered: tuple[str, list[kube.Doc]]) -> None:
    seen = set()
    for doc in rendered[1]:
        for c in kube.containers(doc):
            assert c.get("command") == ["mutt"], doc["metadata"]["name"]
            seen.add(kube.parse_mutt(argv(c)).command)
    assert {"serve", "relay", "db"} <= seen


def test_every_env_name_is_a_setting(rendered: tuple[str, list[kube.Doc]]) -> None:
    for doc in rendered[1]:
        for c in kube.containers(doc):
            kube.check_env(kube.env_of(c), f"{rendered[0]}: {doc['kind']}/{c['name']}")


def test_an_unknown_setting_is_caught() -> None:
    with pytest.raises(kube.ManifestError, match="MUTT_REDIS_ULR"):
        kube.check_env({"MUTT_REDIS_ULR": "redis://x"}, "test")
    with pytest.raises(kube.ManifestError, match="MUTT_LOG_FORMAT"):
        kube.check_env({"MUTT_LOG_FORMAT": "jsn"}, "test")
    with pytest.raises(kube.ManifestError, match="GUNICORN_THREADS"):
        kube.check_env({"GUNICORN_THREADS": "4"}, "test")
    with pytest.raises(kube.ManifestError, match="not a valid mutt command"):
        kube.parse_mutt(["mutt", "serve", "ingets"])
    with pytest.raises(kube.ManifestError, match="bad --to"):
        kube.parse_mutt(["mutt", "relay", "--to", "alert=alert.mutt.svc"])


def test_one_image_everywhere(rendered: tuple[str, list[kube.Doc]]) -> None:
    images = {c["image"] for d in rendered[1] for c in kube.containers(d)}
    assert len(images) == 1, images
    (image,) = images
    name, tag = kube.split_image(image)
    assert tag.startswith(":") and tag != ":latest", "pin a version, never :latest"
    if rendered[0] == "openshift":
        assert name.startswith("image-registry.openshift-image-registry.svc:5000/")


def test_everything_lives_in_one_namespace(rendered: tuple[str, list[kube.Doc]]) -> None:
    namespaces = {d["metadata"].get("namespace") for d in rendered[1] if d["kind"] != "Namespace"}
    assert namespaces == {"mutt"}
    for ns in kube.find(rendered[1], "Namespace"):
        assert ns["metadata"]["name"] == "mutt"


# ------------------------------------------------------------------ relay, Job, PingSource


def test_relay_is_always_on_and_targets_the_functions(
    rendered: tuple[str, list[kube.Doc]],
) -> None:
    name, docs = rendered
    relay = kube.one(docs, "Deployment", "relay")
    assert 1 <= relay["spec"]["replicas"] <= 2
    selector = relay["spec"]["selector"]["matchLabels"]
    assert selector.items() <= relay["spec"]["template"]["metadata"]["labels"].items()
    args = kube.parse_mutt(argv(container(relay)))
    assert args.command == "relay"
    namespace = relay["metadata"]["namespace"]
    svcs = services(docs)
    targets = dict(t.split("=", 1) for t in args.to)
    if name == "broker":
        broker = kube.one(docs, "Broker", "mutt")
        # Only the events stream is bridged; the Triggers do the rest.
        assert targets == {
            "alert": f"http://{KAFKA_INGRESS}/{namespace}/{broker['metadata']['name']}"
        }
        assert args.mode == ["alert=single"]  # a Broker ingress takes single events
        return
    assert set(targets) == set(WORKER_STAGES) & FUNCTIONS
    for stage, url in targets.items():
        parts = urlsplit(url)
        assert parts.hostname == f"{stage}.{namespace}.svc.cluster.local", url
        assert stage in svcs
        # a slow answer within the function's timeout is not a failed delivery
        assert args.timeout > svcs[stage]["spec"]["template"]["spec"]["timeoutSeconds"]
    grace = relay["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > args.timeout, "SIGTERM must leave time to finish the delivery in flight"


def test_every_stream_stage_has_exactly_one_kind_of_consumer(
    rendered: tuple[str, list[kube.Doc]],
) -> None:
    """Each stage's stream is read by the relay (HTTP function) or by a stream
    worker, never both: they would share the consumer group and split its entries.
    In the Broker variant, functions other than alert are fed by Triggers instead."""
    name, docs = rendered
    relayed: set[str] = set()
    workers: list[str] = []
    for deployment in kube.find(docs, "Deployment"):
        args = kube.parse_mutt(argv(container(deployment)))
        if args.command == "relay":
            relayed |= {t.split("=", 1)[0] for t in args.to}
        elif args.command == "worker":
            workers.append(args.stage)
            assert deployment["metadata"]["name"] == args.stage
            assert deployment["spec"]["replicas"] >= 1
        else:
            pytest.fail(f"{deployment['metadata']['name']}: unexpected command {args.command}")
    triggered = {t["spec"]["subscriber"]["ref"]["name"] for t in kube.find(docs, "Trigger")}
    assert len(workers) == len(set(workers)), workers
    assert not relayed & set(workers), "a stage read by both the relay and a worker"
    for stage in WORKER_STAGES:
        fed = stage in relayed or stage in workers or stage in triggered
        assert fed, f"{name}: nothing consumes the {stage} stage's stream"
        if stage not in HTTP_FUNCTIONS:
            assert stage in workers, f"{stage} has no HTTP function: it needs a worker"


def test_migration_job_runs_mutt_db_migrate(rendered: tuple[str, list[kube.Doc]]) -> None:
    job = kube.one(rendered[1], "Job", "mutt-db-migrate")
    args = kube.parse_mutt(argv(container(job)))
    assert (args.command, args.db_command) == ("db", "migrate")
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("OnFailure", "Never")
    assert job["spec"].get("ttlSecondsAfterFinished") is not None, "immutable: must go away"


def test_pingsource_wakes_the_janitor(rendered: tuple[str, list[kube.Doc]]) -> None:
    name, docs = rendered
    ping = kube.one(docs, "PingSource", "janitor-ping")["spec"]
    fields = ping["schedule"].split()
    assert len(fields) == 5 and all(re.fullmatch(r"[0-9*/,-]+", f) for f in fields)
    assert ping["timezone"] and ping["contentType"] == "application/json"
    JanitorRequest.model_validate(json.loads(ping["data"]))
    assert json.loads(ping["data"]) == {"task": "all"}
    ref = ping["sink"]["ref"]
    if name == "broker":
        assert (ref["kind"], ref["name"]) == ("Broker", "mutt")
    else:
        assert (ref["apiVersion"], ref["kind"], ref["name"]) == (
            "serving.knative.dev/v1",
            "Service",
            "janitor",
        )
    assert kube.find(docs, ref["kind"], ref["name"]), f"sink {ref} is not deployed"


def test_forward_config_overlay_gives_forward_and_janitor_the_same_file() -> None:
    """The file forward routes by is the one the janitor's replay builds its sinks from."""
    docs = kube.render(kube.KUSTOMIZATIONS["forward-config"])
    readers = set()
    for name, svc in services(docs).items():
        c = container(svc)
        path = kube.env_of(c).get("MUTT_FORWARD_CONFIG")
        if path is None:
            continue
        readers.add(name)
        volumes = {v["name"]: v for v in svc["spec"]["template"]["spec"]["volumes"]}
        (mount,) = [m for m in c["volumeMounts"] if path.startswith(m["mountPath"] + "/")]
        assert mount.get("readOnly") is True, name
        assert volumes[mount["name"]]["configMap"]["name"] == "mutt-forward", name
        assert path == "/etc/mutt/forward/forward.yaml", name
    assert readers == {"forward", "janitor"}
    doc_text = (kube.ROOT / "docs" / "deploy-knative.md").read_text()
    assert "create configmap mutt-forward --from-file=forward.yaml" in doc_text


def test_every_pod_template_has_the_component_label(rendered: tuple[str, list[kube.Doc]]) -> None:
    """docs/deploy-knative.md lists MUTT's pods by this label: it must reach every pod."""
    for doc in rendered[1]:
        template = doc.get("spec", {}).get("template")
        if template is None:  # PingSource, Broker, Trigger: no pods
            continue
        labels = template.get("metadata", {}).get("labels", {})
        assert labels.get("app.kubernetes.io/component"), doc["metadata"]["name"]


# ------------------------------------------------------------------ Broker and Triggers


@pytest.fixture(scope="module")
def broker_docs() -> list[kube.Doc]:
    return kube.render(kube.KUSTOMIZATIONS["broker"])


def test_broker_is_kafka_class_with_delivery(broker_docs: list[kube.Doc]) -> None:
    broker = kube.one(broker_docs, "Broker", "mutt")
    assert broker["metadata"]["annotations"]["eventing.knative.dev/broker.class"] == "Kafka"
    delivery = broker["spec"]["delivery"]
    assert delivery["retry"] >= 1
    assert delivery["backoffPolicy"] == "exponential"
    assert ISO_DURATION.match(delivery["backoffDelay"]), delivery["backoffDelay"]
    ref = delivery["deadLetterSink"]["ref"]
    assert kube.find(broker_docs, ref["kind"], ref["name"]), f"dead-letter sink {ref} missing"


def routing_problems(docs: list[kube.Doc]) -> list[str]:
    """What is wrong with the Triggers of a rendering (empty: nothing)."""
    problems: list[str] = []
    brokers = {b["metadata"]["name"] for b in kube.find(docs, "Broker")}
    svcs = services(docs)
    emitted = set().union(*EMITS.values())
    for ping in kube.find(docs, "PingSource"):
        if ping["spec"]["sink"]["ref"]["kind"] == "Broker":
            emitted.add(TYPE_PING)
    subscribed: dict[str, set[str]] = {}
    for trigger in kube.find(docs, "Trigger"):
        spec = trigger["spec"]
        name = trigger["metadata"]["name"]
        if spec["broker"] not in brokers:
            problems.append(f"{name}: no Broker {spec['broker']}")
        ref = spec["subscriber"]["ref"]
        if (ref["apiVersion"], ref["kind"]) != ("serving.knative.dev/v1", "Service"):
            problems.append(f"{name}: subscriber is not a Knative Service")
        if ref["name"] not in svcs:
            problems.append(f"{name}: subscriber {ref['name']} is not deployed")
        attributes = spec["filter"]["attributes"]
        event_type = attributes["type"]
        if INNER in attributes:
            event_type += f"[{INNER}={attributes[INNER]}]"
        if event_type not in emitted:
            problems.append(f"{name}: nothing emits {event_type}")
        subscribed.setdefault(ref["name"], set()).add(event_type)
    for function, types in sorted(subscribed.items()):
        loop = EMITS.get(function, set()) & types
        if loop:
            problems.append(f"{function} replies with {sorted(loop)}, which it subscribes to")
    if subscribed != CONSUMES:
        problems.append(f"subscriptions {subscribed} != {CONSUMES}")
    return problems


def test_triggers_route_each_type_to_the_function_that_takes_it(
    broker_docs: list[kube.Doc],
) -> None:
    assert routing_problems(broker_docs) == []


def test_the_routing_check_catches_loops_and_unknown_types(broker_docs: list[kube.Doc]) -> None:
    docs = copy.deepcopy(broker_docs)
    kube.one(docs, "Trigger", "alert")["spec"]["filter"]["attributes"]["type"] = TYPE_ALERT
    assert any("alert replies with" in p for p in routing_problems(docs))
    docs = copy.deepcopy(broker_docs)
    kube.one(docs, "Trigger", "forward")["spec"]["filter"]["attributes"]["type"] = (
        "io.mutt.alert.raised.v2"
    )
    assert any("nothing emits io.mutt.alert.raised.v2" in p for p in routing_problems(docs))
    docs = copy.deepcopy(broker_docs)
    kube.one(docs, "PingSource", "janitor-ping")["spec"]["sink"]["ref"]["kind"] = "Service"
    assert any(f"nothing emits {TYPE_PING}" in p for p in routing_problems(docs))
