"""Load, render and validate MUTT's deployment files without a cluster.

- ``render(dir)`` renders a kustomization the way ``kubectl apply -k`` would,
  for the subset of kustomize the repo uses (resources, namespace, labels,
  images, JSON 6902 patches); any other kustomize field is refused by
  ``schemas/kustomization-subset.schema.yaml``, so the rendering cannot
  silently differ from kustomize's.
- ``validate(doc)`` checks a manifest against the CRD of its kind (the
  ``openAPIV3Schema`` of the version it names) or a hand-written strict
  subset, in a strict mode that rejects every unknown field.
- ``parse_mutt(argv)`` parses a command line with the real ``mutt`` parser.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import functools
import io
import re
import shlex
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft4Validator

from mutt.cli import build_parser
from mutt.stages import HTTP_FUNCTIONS, WORKER_STAGES
from shared.config import Settings, env_name, load_settings
from shared.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "tests" / "deploy" / "schemas"
KNATIVE = ROOT / "knative"
KUSTOMIZATIONS = {
    "base": KNATIVE / "base",
    "openshift": KNATIVE / "overlays" / "openshift",
    "forward-config": KNATIVE / "overlays" / "forward-config",
    "broker": KNATIVE / "broker",
}

Doc = dict[str, Any]

# (group, kind) -> CRD file; the version comes from the manifest's apiVersion.
CRD_FILES = {
    ("serving.knative.dev", "Service"): "serving-v1.22.1-service.yaml",
    ("eventing.knative.dev", "Broker"): "eventing-v1.22.2-broker.yaml",
    ("eventing.knative.dev", "Trigger"): "eventing-v1.22.2-trigger.yaml",
    ("sources.knative.dev", "PingSource"): "eventing-v1.22.2-pingsource.yaml",
}
# Objects a CRD leaves open (no properties, or x-kubernetes-preserve-unknown-fields
# with nothing listed) accept nothing in strict mode unless given a schema here.
OPEN_OBJECT_SCHEMAS: dict[tuple[str, tuple[str, ...]], Doc] = {
    ("Trigger", ("spec", "filter", "attributes")): {
        "type": "object",
        "minProperties": 1,
        "additionalProperties": {"type": "string", "minLength": 1},
    },
}
CORE_KINDS = {("apps/v1", "Deployment"), ("batch/v1", "Job"), ("v1", "Namespace")}
CLUSTER_SCOPED = {"Namespace"}

# Environment variables a MUTT container may carry besides the MUTT_* settings:
# functions-framework's own (gunicorn WORKERS / THREADS, PORT, FUNCTION_TARGET
# for the image's default command) and OpenTelemetry's standard OTEL_*.
FOREIGN_ENV = frozenset({"WORKERS", "THREADS", "PORT", "FUNCTION_TARGET"})
SETTING_NAMES = frozenset(env_name(field) for field in Settings.model_fields)


class ManifestError(AssertionError):
    """A deployment file that is wrong; the message names the file and the field."""


# ---------------------------------------------------------------- loading


def load_docs(path: Path) -> list[Doc]:
    with path.open(encoding="utf-8") as fh:
        docs = [d for d in yaml.safe_load_all(fh) if d is not None]
    for doc in docs:
        if not isinstance(doc, dict):
            raise ManifestError(f"{path}: a document is not a mapping")
    return docs


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@functools.cache
def _yaml_schema(name: str) -> Doc:
    return load_yaml(SCHEMAS / name)  # type: ignore[no-any-return]


def core_schema() -> Doc:
    return _yaml_schema("k8s-core-subset.schema.yaml")


# ---------------------------------------------------------------- strict CRD schemas


def _strict(node: Doc, kind: str, path: tuple[str, ...]) -> Doc:
    """A copy of an OpenAPI v3 CRD schema node that rejects unknown fields."""
    override = OPEN_OBJECT_SCHEMAS.get((kind, path))
    if override is not None:
        return copy.deepcopy(override)
    out = {k: v for k, v in node.items() if not k.startswith("x-kubernetes-")}
    if node.get("x-kubernetes-int-or-string") and "type" not in node:
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if "properties" in node:
        out["properties"] = {
            name: _strict(sub, kind, (*path, name)) for name, sub in node["properties"].items()
        }
    if isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = _strict(node["additionalProperties"], kind, (*path, "*"))
    elif node.get("type") == "object" or "properties" in node:
        # Listed properties only; an object the CRD leaves open must stay empty.
        out["additionalProperties"] = False
    if isinstance(node.get("items"), dict):
        out["items"] = _strict(node["items"], kind, (*path, "[]"))
    for key in ("allOf", "anyOf", "oneOf"):
        if key in node:
            out[key] = [_strict(sub, kind, path) for sub in node[key]]
    return out


@functools.cache
def crd_version(group: str, kind: str, version: str) -> Doc:
    """The CRD's entry for ``version`` (served), with ``storage`` and the raw schema."""
    filename = CRD_FILES.get((group, kind))
    if filename is None:
        raise ManifestError(f"no CRD schema for {group} {kind}")
    crd = load_yaml(SCHEMAS / filename)
    if crd["spec"]["group"] != group or crd["spec"]["names"]["kind"] != kind:
        raise ManifestError(f"{filename} is not the CRD of {group} {kind}")
    for entry in crd["spec"]["versions"]:
        if entry["name"] == version:
            if not entry.get("served"):
                raise ManifestError(f"{group}/{version} {kind} is not served")
            return entry  # type: ignore[no-any-return]
    raise ManifestError(f"{kind}: the CRD has no version {version!r}")


@functools.cache
def _validator(api_version: str, kind: str) -> Draft4Validator:
    core = core_schema()
    if (api_version, kind) in CORE_KINDS:
        schema: Doc = {"definitions": core["definitions"], "$ref": f"#/definitions/{kind}"}
    elif (api_version, kind) == ("eventing.knative.dev/v1alpha1", "KafkaSink"):
        schema = copy.deepcopy(_yaml_schema("kafkasink-v1alpha1-subset.schema.yaml"))
        schema["properties"]["metadata"] = {"$ref": "#/definitions/ObjectMeta"}
        schema["definitions"] = core["definitions"]
    else:
        group, _, version = api_version.rpartition("/")
        entry = crd_version(group, kind, version)
        root = _strict(entry["schema"]["openAPIV3Schema"], kind, ())
        props = dict(root.get("properties", {}))
        props.pop("status", None)  # set by controllers, never by a manifest
        props["apiVersion"] = {"enum": [api_version]}
        props["kind"] = {"enum": [kind]}
        props["metadata"] = {"$ref": "#/definitions/ObjectMeta"}
        root["properties"] = props
        root["required"] = ["apiVersion", "kind", "metadata", "spec"]
        root["additionalProperties"] = False
        root["definitions"] = core["definitions"]
        schema = root
    Draft4Validator.check_schema(schema)
    return Draft4Validator(schema)


def schema_errors(doc: Doc) -> list[str]:
    """Every way ``doc`` breaks its strict schema, as ``path: message`` lines."""
    api_version, kind = doc.get("apiVersion"), doc.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return ["apiVersion and kind are required"]
    validator = _validator(api_version, kind)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    return [f"/{'/'.join(str(p) for p in e.absolute_path)}: {e.message}" for e in errors]


def validate(doc: Doc, where: str = "") -> None:
    errors = schema_errors(doc)
    if errors:
        name = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        raise ManifestError(f"{where} {name}:\n  " + "\n  ".join(errors))


# ---------------------------------------------------------------- kustomize subset


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise ManifestError(f"JSON pointer {path!r} must start with /")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def apply_json_patch(doc: Doc, ops: list[Doc], where: str) -> None:
    """RFC 6902 add / replace / remove, as kustomize applies a patch file of operations."""
    for op in ops:
        *parents, last = _pointer(op["path"])
        node: Any = doc
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        kind = op["op"]
        if isinstance(node, list):
            index = len(node) if last == "-" else int(last)
            if kind == "add":
                node.insert(index, copy.deepcopy(op["value"]))
            elif kind == "replace":
                node[index] = copy.deepcopy(op["value"])
            elif kind == "remove":
                del node[index]
            else:
                raise ManifestError(f"{where}: unsupported patch op {kind!r}")
        elif kind == "add":
            node[last] = copy.deepcopy(op["value"])
        elif kind in ("replace", "remove"):
            if last not in node:
                raise ManifestError(f"{where}: {op['path']} does not exist")
            if kind == "replace":
                node[last] = copy.deepcopy(op["value"])
            else:
                del node[last]
        else:
            raise ManifestError(f"{where}: unsupported patch op {kind!r}")


def split_image(image: str) -> tuple[str, str]:
    """``(name, ":tag" or "@digest" or "")``."""
    if "@" in image:
        name, digest = image.split("@", 1)
        return name, "@" + digest
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        return image[:colon], image[colon:]
    return image, ""


def containers(doc: Any) -> Iterator[Doc]:
    """Every container (and init container) anywhere in a manifest."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                yield from (c for c in value if isinstance(c, dict))
            else:
                yield from containers(value)
    elif isinstance(doc, list):
        for item in doc:
            yield from containers(item)


def render(directory: Path) -> list[Doc]:
    """The manifests ``kubectl apply -k directory`` would apply."""
    kfile = directory / "kustomization.yaml"
    kust = load_yaml(kfile)
    schema = _yaml_schema("kustomization-subset.schema.yaml")
    errors = [
        f"/{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in Draft4Validator(schema).iter_errors(kust)
    ]
    if errors:
        raise ManifestError(f"{kfile}:\n  " + "\n  ".join(errors))
    docs: list[Doc] = []
    for entry in kust["resources"]:
        path = directory / entry
        if path.is_dir():
            docs.extend(render(path))
        elif path.is_file():
            docs.extend(load_docs(path))
        else:
            raise ManifestError(f"{kfile}: resource {entry!r} does not exist")
    for patch in kust.get("patches", []):
        target = patch["target"]
        matches = [
            d
            for d in docs
            if d["kind"] == target["kind"] and d["metadata"]["name"] == target["name"]
        ]
        if len(matches) != 1:
            raise ManifestError(f"{kfile}: patch target {target} matches {len(matches)} resources")
        ops = load_yaml(directory / patch["path"])
        apply_json_patch(matches[0], ops, f"{directory / patch['path']}")
    namespace = kust.get("namespace")
    for doc in docs:
        meta = doc.setdefault("metadata", {})
        if namespace and doc["kind"] not in CLUSTER_SCOPED:
            meta["namespace"] = namespace
        for label in kust.get("labels", []):
            meta.setdefault("labels", {}).update(label["pairs"])
        for image in kust.get("images", []):
            for container in containers(doc):
                name, tag = split_image(container["image"])
                if name == image["name"]:
                    new_tag = f":{image['newTag']}" if "newTag" in image else tag
                    container["image"] = image.get("newName", name) + new_tag
    seen: set[tuple[str, str, str, str]] = set()
    for doc in docs:
        key = (
            doc["apiVersion"].rpartition("/")[0],
            doc["kind"],
            doc["metadata"].get("namespace", ""),
            doc["metadata"]["name"],
        )
        if key in seen:
            raise ManifestError(f"{kfile}: {key} is defined twice")
        seen.add(key)
    return docs


def find(docs: list[Doc], kind: str, name: str | None = None) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]


def one(docs: list[Doc], kind: str, name: str) -> Doc:
    found = find(docs, kind, name)
    if len(found) != 1:
        raise ManifestError(f"expected one {kind}/{name}, found {len(found)}")
    return found[0]


def env_of(container: Mapping[str, Any]) -> dict[str, Any]:
    """``{name: value or the valueFrom mapping}``."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


# ---------------------------------------------------------------- commands and settings


def parse_mutt(argv: list[str]) -> argparse.Namespace:
    """Parse ``mutt ...`` with the real parser, then apply the checks each command
    makes at start that do not need a server (relay targets, served functions)."""
    if not argv or argv[0] != "mutt":
        raise ManifestError(f"not a mutt command: {argv}")
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            args = build_parser().parse_args(argv[1:])
        except SystemExit:
            raise ManifestError(
                f"`{shlex.join(argv)}` is not a valid mutt command: {err.getvalue().strip()}"
            ) from None
    if args.command == "relay":
        for target in args.to:
            stage, sep, url = target.partition("=")
            if not sep or stage not in WORKER_STAGES or not url.startswith(("http://", "https://")):
                raise ManifestError(f"`{shlex.join(argv)}`: bad --to {target!r}")
    if args.command == "serve":
        source = ROOT / HTTP_FUNCTIONS[args.function]
        names = {
            n.name for n in ast.parse(source.read_text()).body if isinstance(n, ast.FunctionDef)
        }
        if args.function not in names:
            raise ManifestError(f"{source} defines no target {args.function!r}")
    return args


_MUTT_IN_SCRIPT = re.compile(r"(?:^|[;&|({]|\bdo|\bthen|\bexec)\s*(mutt\s[^;&|\n]*)", re.M)


def mutt_commands_in_script(script: str) -> list[list[str]]:
    """Every ``mutt ...`` simple command in a shell script (up to ; & | or newline)."""
    return [shlex.split(m.group(1), comments=True) for m in _MUTT_IN_SCRIPT.finditer(script)]


def check_env(env: Mapping[str, object], where: str) -> None:
    """Names: MUTT_* settings that exist, MUTT_SECRET_* secrets, functions-framework's
    or OTEL_*; literal MUTT_* setting values must pass the settings' own validation."""
    literal: dict[str, str] = {}
    for name, value in env.items():
        if name.startswith("MUTT_SECRET_"):
            continue  # a secret of the chain's environment leg, as load_settings allows
        if name.startswith("MUTT_"):
            if name not in SETTING_NAMES:
                raise ManifestError(f"{where}: {name} is not a setting of shared/config.py")
            if isinstance(value, str):
                literal[name] = value
        elif name not in FOREIGN_ENV and not name.startswith("OTEL_"):
            raise ManifestError(f"{where}: unexpected environment variable {name}")
    try:
        load_settings(literal)
    except ConfigError as exc:
        raise ManifestError(f"{where}: {exc}") from None
