"""No configured secret ever shows up in logs, streams, events, audit rows, metrics or answers.

Every place a value could land is read back: the processes' logs (DEBUG),
every Redis key of the namespace whatever its type (streams, dead letters,
parked entries, hashes), both audit tables, ``/metrics`` and ``/readyz`` of
ingest and of a worker's ops server, and the body and headers of every kind
of error answer (401, 429, 404, 413, 415, 400).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import orjson
import pg8000.native
import pytest
import redis
import requests
import yaml

from shared.broker import streams
from shared.broker.keys import Keys
from shared.config import Settings
from tests.support.processes import free_port, mutt, settings_env, stop, wait_http
from tests.support.vendor import VendorServer

pytestmark = pytest.mark.slow

API_KEY = "api-KEY-7f3a9c"
SIGNING = "sign-SECRET-1b2c"
TOKEN = "bearer-TOKEN-99aa"


@pytest.mark.usefixtures("demo_rules")
def test_secrets_never_leak(
    settings: Settings,
    r: redis.Redis,
    pg: pg8000.native.Connection,
    keys: Keys,
    tmp_path: Path,
    vendor: VendorServer,
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
        "MUTT_INGEST_AUTH_FAILURE_LIMIT": "3",
        "MUTT_INGEST_MAX_BODY_BYTES": "4096",
    }
    logs = tmp_path / "logs.txt"
    port = free_port()
    health = free_port()
    answers: list[requests.Response] = []
    with logs.open("wb") as out:
        procs = [
            subprocess.Popen(
                mutt(*argv),
                env={**env, **({"MUTT_HEALTH_PORT": str(health)} if argv[-1] == "forward" else {})},
                stderr=out,
                stdout=out,
            )
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
            answers += error_answers(url, event)
            wait_http(f"http://127.0.0.1:{health}/healthz", procs[2])
            for base in (url, f"http://127.0.0.1:{health}"):
                for path in ("/metrics", "/readyz"):
                    answers.append(requests.get(base + path, timeout=10))
        finally:
            for p in reversed(procs):
                stop(p)
    hook = vendor.requests[0]
    assert hook.headers["Authorization"] == f"Bearer {TOKEN}"  # secrets do reach the vendor...
    statuses = {a.status_code for a in answers}
    assert {401, 429, 404, 413, 415, 400, 200} <= statuses, statuses
    seen = [logs.read_bytes(), wrong.content, ok.content]
    for answer in answers:
        seen += [answer.content, orjson.dumps(dict(answer.headers))]
    seen += redis_contents(r, keys)
    for table in ("event_audit_log", "config_audit_log"):
        rows = pg.run(f"SELECT * FROM {table}")
        assert rows or table == "config_audit_log", f"nothing in {table} to check"
        seen.append(orjson.dumps(rows, default=str))
    blob = b"\n".join(seen)
    for secret in (API_KEY, SIGNING, TOKEN):
        assert secret.encode() not in blob  # ...and nowhere else


def error_answers(url: str, event: dict[str, str]) -> list[requests.Response]:
    """One answer of each error kind, each request carrying the valid key."""
    key = {"X-API-KEY": API_KEY}
    out = [
        requests.post(url + "/nope", json=event, headers=key, timeout=10),  # 404
        requests.post(url + "/api/v2/ingest", data=b"x" * 8192, headers=key, timeout=10),  # 413
        requests.post(
            url + "/api/v2/ingest",
            data=b"<x/>",
            headers={**key, "content-type": "text/xml"},
            timeout=10,
        ),  # 415
        requests.post(
            url + "/api/v2/ingest",
            data=b"{not json",
            headers={"Authorization": f"Bearer {API_KEY}", "content-type": "application/json"},
            timeout=10,
        ),  # 400
        requests.post(url + f"/api/v2/ingest?api_key={API_KEY}", json=event, timeout=10),  # 401
    ]
    for _ in range(3):  # the throttle: wrong keys until 429
        out.append(
            requests.post(
                url + "/api/v2/ingest", json=event, headers={"X-API-KEY": "nope"}, timeout=10
            )
        )
    return out


def redis_contents(r: redis.Redis, keys: Keys) -> list[bytes]:
    """Every value under the namespace, whatever the key's type."""
    out: list[bytes] = []
    for key in r.scan_iter(match=f"{keys.namespace}:*"):
        kind = r.type(key)
        if kind == b"stream":
            out += [
                orjson.dumps({k.decode(): v.decode(errors="replace") for k, v in f.items()})
                for _, f in r.xrange(key)
            ]
        elif kind == b"hash":
            out += [k + b"=" + v for k, v in r.hgetall(key).items()]
        elif kind == b"zset":
            out += [m for m, _ in r.zrange(key, 0, -1, withscores=True)]
        elif kind == b"list":
            out += r.lrange(key, 0, -1)
        elif kind == b"set":
            out += list(r.smembers(key))
        elif kind == b"string":
            out.append(r.get(key) or b"")
        out.append(key)
    return out
