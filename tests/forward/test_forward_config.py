"""The forward configuration file, and a forward worker delivering through it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import redis
import yaml

from functions.forward.config import load_config
from functions.forward.sinks.webhook import verify_signature
from shared.broker import streams
from shared.broker.keys import Keys
from shared.config import Settings
from shared.envelope import FIELD, encode
from shared.errors import ConfigError
from tests.support.factories import alert_event
from tests.support.processes import mutt, settings_env
from tests.support.vendor import VendorServer


def write(tmp_path: Path, doc: object) -> Path:
    path = tmp_path / "forward.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            {"sinks": [{"name": "a", "type": "stdout"}], "routes": [{"sinks": ["b"]}]},
            "unknown sink(s) b",
        ),
        ({"sinks": [{"name": "a", "type": "stdout"}]}, "at least one route or a default"),
        ({"sinks": [{"name": "a", "type": "webhook", "url": "ftp://x"}], "default": ["a"]}, "http"),
        ({"sinks": [{"name": "a", "type": "stdout"}], "default": ["a"], "extra": 1}, "extra"),
        ("- not a mapping", "valid"),
        # Conditions that could never match would silently send alerts elsewhere.
        (
            {
                "sinks": [{"name": "a", "type": "stdout"}],
                "routes": [{"match": {"environment": ["production"]}, "sinks": ["a"]}],
            },
            "routes.0.match.environment: unknown environment(s) production; alerts carry prod, dev",
        ),
        (
            {
                "sinks": [{"name": "a", "type": "stdout"}],
                "routes": [{"match": {"team": []}, "sinks": ["a"]}],
            },
            "routes.0.match.team: List should have at least 1 item",
        ),
        (
            {
                "sinks": [{"name": "a", "type": "stdout"}],
                "routes": [{"match": {"handling": ["page_only"]}, "sinks": ["a"]}],
            },
            "routes.0.match.handling.0: Input should be 'Page_and_ticket'",
        ),
    ],
)
def test_invalid_files_are_refused_with_the_reason(
    tmp_path: Path, doc: object, message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, doc))
    assert str(err.value).startswith("MUTT_FORWARD_CONFIG: ")
    assert message in str(err.value)


def test_missing_secret_stops_the_worker_with_one_line(settings: Settings, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "sinks": [{"name": "pd", "type": "pagerduty", "routing_key_secret": "pd_key"}],
            "default": ["pd"],
        },
    )
    env = {**settings_env(settings), "MUTT_FORWARD_CONFIG": str(path)}
    proc = subprocess.run(
        mutt("worker", "forward"), env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        .splitlines()[-1]
        .startswith("mutt: MUTT_FORWARD_CONFIG: sink pd: secret 'pd_key'")
    )


@pytest.mark.slow
def test_worker_delivers_signed_webhooks_by_route(
    settings: Settings, r: redis.Redis, keys: Keys, tmp_path: Path, vendor: VendorServer
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "hook_key").write_text("s3cret")
    path = write(
        tmp_path,
        {
            "sinks": [
                {
                    "name": "hook",
                    "type": "webhook",
                    "url": f"{vendor.url}/hook",
                    "signing_key_secret": "hook_key",
                },
                {"name": "file", "type": "file", "path": str(tmp_path / "other.jsonl")},
            ],
            "routes": [{"match": {"team": ["NetOps"]}, "sinks": ["hook"]}],
            "default": ["file"],
        },
    )
    streams.publish(
        r,
        keys.alerts,
        [{FIELD: encode(alert_event(i, "NetOps" if i % 2 else "NETO"))} for i in range(10)],
    )
    env = {
        **settings_env(settings),
        "MUTT_FORWARD_CONFIG": str(path),
        "MUTT_SECRETS_DIR": str(secrets),
    }
    proc = subprocess.Popen(mutt("worker", "forward"), env=env)
    try:
        assert streams.wait_drained(r, [(keys.alerts, "forward")], timeout=30)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    hooks = [req for req in vendor.requests if req.path == "/hook"]
    assert len(hooks) == 5
    for req in hooks:
        assert verify_signature("s3cret", req.body, req.headers["X-MUTT-Signature"])
        assert req.json()["team"] == "NetOps"
    assert len((tmp_path / "other.jsonl").read_text().splitlines()) == 5
