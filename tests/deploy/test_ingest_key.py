"""Every deployment ships ingest with its API key wired, and would not start without it.

For Knative, compose and the RHEL units: ingest listens off loopback, its
``MUTT_SECRETS_DIR`` is where a secret holding ``ingest_api_keys`` is mounted,
authentication is not turned off, and the doc of each creates that secret.
Then the start check itself runs with the environment the manifest gives
the container: refused with an empty secret directory, passed with the key.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest

from functions.ingest import auth
from functions.ingest.exposure import check_start, is_loopback
from shared.config import load_settings
from shared.errors import ConfigError
from shared.secrets import Secrets
from tests.deploy import test_containers, test_rhel
from tests.support import kube

KEY_FILE = auth.SECRET_NAME
DOCS = kube.ROOT / "docs"


def start_check(env: dict[str, str], host: str, tmp_path: Path, *, with_key: bool) -> None:
    """``mutt serve ingest --host HOST`` with the container's settings; its secret
    directory replaced by a temporary one, the server URLs by placeholders."""
    secrets = tmp_path / ("with" if with_key else "without")
    secrets.mkdir()
    if with_key:
        (secrets / KEY_FILE).write_text("0123456789abcdef0123456789abcdef\n")
    values = {k: v for k, v in env.items() if k.startswith("MUTT_")}
    values |= {
        "MUTT_SECRETS_DIR": str(secrets),
        "MUTT_REDIS_URL": "redis://redis.invalid:6379/0",
        "MUTT_DATABASE_URL": "postgresql://mutt@postgres.invalid/mutt",
    }
    settings = load_settings(values)
    try:
        check_start(settings, Secrets(settings.secrets_dir, environ={}), host)
    finally:
        auth.allow_keyless(False)


def assert_wired(env: dict[str, str], host: str, mounted_at: str, tmp_path: Path) -> None:
    assert not is_loopback(host), "ingest is deployed to be reached from elsewhere"
    assert env.get("MUTT_INGEST_AUTH", "on") == "on", "authentication turned off"
    assert env["MUTT_SECRETS_DIR"].rstrip("/") == mounted_at.rstrip("/")
    with pytest.raises(ConfigError, match="no API key"):
        start_check(env, host, tmp_path, with_key=False)
    start_check(env, host, tmp_path, with_key=True)


# ------------------------------------------------------------------ Knative


@pytest.mark.parametrize("name", sorted(kube.KUSTOMIZATIONS))
def test_knative_ingest_reads_the_key_from_the_mounted_secret(name: str, tmp_path: Path) -> None:
    docs = kube.render(kube.KUSTOMIZATIONS[name])
    svc = kube.one(docs, "Service", "ingest")
    (c,) = svc["spec"]["template"]["spec"]["containers"]
    args = kube.parse_mutt([*c["command"], *c["args"]])
    env = {k: v for k, v in kube.env_of(c).items() if isinstance(v, str)}
    volumes = {v["name"]: v for v in svc["spec"]["template"]["spec"]["volumes"]}
    mount = next(m for m in c["volumeMounts"] if m["mountPath"] == env["MUTT_SECRETS_DIR"])
    secret = volumes[mount["name"]]["secret"]
    assert secret["secretName"] == "mutt-secrets"
    assert not secret.get("optional"), "a missing Secret must stop the pod, not start it open"
    items = secret.get("items")
    assert items is None or KEY_FILE in {i["path"] for i in items}
    assert_wired(env, args.host, mount["mountPath"], tmp_path)
    assert env["MUTT_INGEST_TRUSTED_PROXIES"], "on Knative every peer is the queue-proxy"


def test_the_knative_doc_puts_the_key_in_that_secret() -> None:
    text = (DOCS / "deploy-knative.md").read_text()
    creates = [line for line in text.splitlines() if "create secret generic mutt-secrets" in line]
    first = [line for line in creates if "--from-file" not in line]  # later updates
    assert first, "docs/deploy-knative.md never creates mutt-secrets"
    assert all(f"--from-literal={KEY_FILE}=" in line for line in first), first
    step = text.index("## 2. Namespace and secrets")
    assert text.index(KEY_FILE, step) < text.index("## 3. Deploy"), "create it before deploying"
    assert "X-API-KEY: $INGEST_KEY" in text, "the example request must present the key"


# ------------------------------------------------------------------ compose


def test_compose_mounts_the_key_as_a_secret(tmp_path: Path) -> None:
    compose: dict[str, Any] = kube.load_yaml(test_containers.COMPOSE)
    ingest = compose["services"]["ingest"]
    args = kube.parse_mutt(ingest["command"])
    env = test_containers.service_env(ingest)
    assert KEY_FILE in ingest["secrets"]
    source = compose["secrets"][KEY_FILE]["file"]
    assert (test_containers.COMPOSE.parent / source).parent.name == "secrets"
    assert "local/secrets/" in (kube.ROOT / ".gitignore").read_text().split()
    assert_wired(env, args.host, "/run/secrets", tmp_path)  # compose mounts secrets there
    text = (DOCS / "local.md").read_text()
    assert f"> local/secrets/{KEY_FILE}" in text, "docs/local.md must create the key file"
    assert text.index(f"local/secrets/{KEY_FILE}") < text.index("up --build")


# ------------------------------------------------------------------ RHEL


def test_rhel_ingest_unit_mounts_the_podman_secret(tmp_path: Path) -> None:
    unit = test_rhel.parse_unit(test_rhel.RHEL / "mutt-ingest.container")["Container"]
    args = kube.parse_mutt(shlex.split(unit["Exec"][0]))
    env = {
        **test_containers.env_file(test_rhel.RHEL / "mutt.env"),
        **test_rhel.environment({"Container": unit}),
    }
    (secret,) = unit["Secret"]
    name, *options = secret.split(",")
    opts = dict(o.split("=", 1) for o in options)
    assert opts["type"] == "mount"
    target = Path(opts["target"])
    assert target.name == KEY_FILE
    assert_wired(env, args.host, str(target.parent), tmp_path)
    text = (DOCS / "deploy-rhel.md").read_text()
    assert f"podman secret create {name} " in text, f"docs/deploy-rhel.md never creates {name}"
    assert text.index(f"podman secret create {name}") < text.index("## 4. Start")
