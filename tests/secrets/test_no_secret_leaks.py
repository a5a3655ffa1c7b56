"""No configured secret ever shows up in logs, streams, events or error answers."""

from __future__ import annotations

import subprocess
from pathlib import Path

import orjson
import pytest
import redis
import requests
import yaml

from shared.broker import streams
from shared.broker.keys import Keys
from shared.config import Settings
from tests.forward.vendor import VendorServer
from tests.helpers import free_port, mutt, settings_env, stop, wait_http

pytestmark = pytest.mark.slow

API_KEY = "api-KEY-7f3a9c"
SIGNING = "sign-SECRET-1b2c"
TOKEN = "bearer-TOKEN-99aa"


@pytest.mark.usefixtures("demo_rules")
def test_secrets_never_leak(
    settings: Settings, r: redis.Redis, keys: Keys, tmp_path: Path, vendor: VendorServer
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "ingest_api_keys").write_text(API_KEY)
    (secrets / "hook_signing").write_text(SIGNING)
    (secrets / "hook_token").write_text(TOKEN)
    config = tmp_path / "forward.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "sinks": [
                    {
                        "name": "hook",
                        "type": "webhook",
                        "url": f"{vendor.url}/hook",
                        "signing_key_secret": "hook_signing",
                        "bearer_token_secret": "hook_token",
                    }
                ],
                "default": ["hook"],
            }
        )
    )
    vendor.reply(
        500, "upstream down"
    )  # failures get logged and dead-lettered: no secret in them either
    env = {
        **settings_env(settings),
        "MUTT_SECRETS_DIR": str(secrets),
        "MUTT_FORWARD_CONFIG": str(config),
        "MUTT_LOG_LEVEL": "DEBUG",
    }
    logs = tmp_path / "logs.txt"
    port = free_port()
    with logs.open("wb") as out:
        procs = [
            subprocess.Popen(mutt(*argv), env=env, stderr=out, stdout=out)
            for argv in (
                ["serve", "ingest", "--port", str(port)],
                ["worker", "alert"],
                ["worker", "forward"],
                ["worker", "audit"],
            )
        ]
        try:
            url = f"http://127.0.0.1:{port}"
            wait_http(url + "/healthz", procs[0])
            event = {
                "hostname": "r1",
                "message": "Gi0/1 changed state to down",
                "timestamp": "2025-01-01T00:00:00Z",
            }
            wrong = requests.post(
                url + "/api/v2/ingest", json=event, headers={"X-API-KEY": API_KEY[:-1]}, timeout=10
            )
            assert wrong.status_code == 401
            ok = requests.post(
                url + "/api/v2/ingest", json=event, headers={"X-API-KEY": API_KEY}, timeout=10
            )
            assert ok.status_code == 202
            assert streams.wait_drained(r, [(keys.events, "alert")], timeout=30)
            import time

            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not vendor.requests:
                time.sleep(0.05)
            assert vendor.requests  # the sink was called (and failed)
        finally:
            for p in reversed(procs):
                stop(p)
    hook = vendor.requests[0]
    assert hook.headers["Authorization"] == f"Bearer {TOKEN}"  # secrets do reach the vendor...
    seen = [logs.read_bytes(), wrong.content, ok.content]
    for stream in keys.all_streams():
        for _, fields in r.xrange(stream):
            seen.append(
                orjson.dumps({k.decode(): v.decode(errors="replace") for k, v in fields.items()})
            )
    for key in r.scan_iter(match=f"{keys.namespace}:*"):
        if r.type(key) == b"hash":
            seen.append(
                orjson.dumps(
                    {k.decode(): v.decode(errors="replace") for k, v in r.hgetall(key).items()}
                )
            )
    blob = b"\n".join(seen)
    for secret in (API_KEY, SIGNING, TOKEN):
        assert secret.encode() not in blob  # ...and nowhere else
