"""Ingest authentication over HTTP: closed without keys, throttled on failure, rotatable."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import flask
import pytest
import redis
from flask.testing import FlaskClient
from prometheus_client import REGISTRY

from functions.ingest import app as ingest_app
from functions.ingest import auth
from shared.broker.keys import Keys
from shared.config import Settings
from shared.context import Context, set_context
from tests.ingest.conftest import API_KEY, make_client

EVENT = {"hostname": "h", "message": "m", "timestamp": "2025-01-01T00:00:00Z"}


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def strict(settings: Settings, tmp_path: Path) -> Iterator[tuple[FlaskClient, Path]]:
    """Keys configured, 3 failures per address and window, loopback proxies trusted."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "ingest_api_keys").write_text(f"{API_KEY}\n")
    client = make_client(
        settings.model_copy(
            update={
                "secrets_dir": secrets,
                "ingest_auth_failure_limit": 3,
                "ingest_trusted_proxies": "127.0.0.0/8",
            }
        )
    )
    yield client, secrets
    set_context(None)
    ingest_app._ingest = None
    auth.allow_keyless(False)


def test_a_bad_key_flood_is_throttled_per_address_and_never_reaches_redis(
    strict: tuple[FlaskClient, Path], r: redis.Redis, keys: Keys
) -> None:
    client, _ = strict
    failures = metric("mutt_ingest_auth_failures_total", reason="invalid")
    throttled = metric("mutt_ingest_auth_throttled_total")
    bad = {"X-API-KEY": "guess", "X-Forwarded-For": "203.0.113.7"}
    answers = [client.post("/ingest", json=EVENT, headers=bad) for _ in range(10)]
    assert [a.status_code for a in answers] == [401] * 3 + [429] * 7
    late = answers[-1]
    assert 1 <= int(late.headers["Retry-After"]) <= 60
    assert late.json["retry_after_seconds"] == int(late.headers["Retry-After"])
    assert "too many failed authentications" in late.json["error"]
    assert metric("mutt_ingest_auth_failures_total", reason="invalid") - failures == 3
    assert metric("mutt_ingest_auth_throttled_total") - throttled == 7
    # While throttled even the right key is not looked at: guessing gains nothing.
    good_from_there = {"X-API-KEY": API_KEY, "X-Forwarded-For": "203.0.113.7"}
    assert client.post("/ingest", json=EVENT, headers=good_from_there).status_code == 429
    assert list(r.scan_iter(match=f"{keys.namespace}:*")) == []  # admission never ran
    # Another address is not affected, and its good key goes through.
    other = {"X-API-KEY": API_KEY, "X-Forwarded-For": "198.51.100.9"}
    assert client.post("/ingest", json=EVENT, headers=other).status_code == 202


def test_a_forged_forwarded_for_does_not_escape_the_throttle(
    strict: tuple[FlaskClient, Path],
) -> None:
    client, _ = strict
    for i in range(3):  # the proxy appended the real address; the client forged the left part
        forged = {"X-API-KEY": "guess", "X-Forwarded-For": f"10.9.9.{i}, 203.0.113.8"}
        assert client.post("/ingest", json=EVENT, headers=forged).status_code == 401
    forged = {"X-API-KEY": "guess", "X-Forwarded-For": "10.9.9.99, 203.0.113.8"}
    assert client.post("/ingest", json=EVENT, headers=forged).status_code == 429


def test_without_trusted_proxies_the_peer_is_the_client(secured: FlaskClient) -> None:
    limit = Settings().ingest_auth_failure_limit
    for i in range(limit):
        headers = {"X-API-KEY": "guess", "X-Forwarded-For": f"198.51.100.{i}"}
        assert secured.post("/ingest", json=EVENT, headers=headers).status_code == 401
    fresh = {"X-API-KEY": "guess", "X-Forwarded-For": "192.0.2.1"}
    assert secured.post("/ingest", json=EVENT, headers=fresh).status_code == 429


def test_missing_credentials_count_as_failures(strict: tuple[FlaskClient, Path]) -> None:
    client, _ = strict
    before = metric("mutt_ingest_auth_failures_total", reason="missing")
    statuses = [client.post("/ingest", json=EVENT).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    assert metric("mutt_ingest_auth_failures_total", reason="missing") - before == 3


def test_a_key_rotation_keeps_both_keys_valid_during_the_overlap(
    settings: Settings, tmp_path: Path
) -> None:
    """The documented rotation (docs/security.md): add the new key, move senders, drop the old."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    keyfile = secrets / "ingest_api_keys"
    keyfile.write_text("old-key-0123456789abcdef\n")
    client = make_client(settings.model_copy(update={"secrets_dir": secrets}))

    def status(key: str, n: int) -> int:
        event = {**EVENT, "message": f"rotation {key} {n}"}
        return client.post("/ingest", json=event, headers={"X-API-KEY": key}).status_code

    def reread() -> None:  # secrets are re-read every 30 s; a test does not wait for that
        assert ingest_app._ingest is not None
        ingest_app._ingest.ctx.secrets._cache.clear()

    try:
        assert status("old-key-0123456789abcdef", 1) == 202
        assert status("new-key-fedcba9876543210", 1) == 401
        keyfile.write_text("old-key-0123456789abcdef\nnew-key-fedcba9876543210\n")  # step 1
        reread()
        assert status("old-key-0123456789abcdef", 2) == 202
        assert status("new-key-fedcba9876543210", 2) == 202
        keyfile.write_text("new-key-fedcba9876543210\n")  # step 3, once every sender moved
        reread()
        assert status("new-key-fedcba9876543210", 3) == 202
        assert status("old-key-0123456789abcdef", 3) == 401
    finally:
        set_context(None)
        ingest_app._ingest = None
        auth.allow_keyless(False)


def test_keys_gone_after_a_closed_start_refuse_every_request(
    settings: Settings, tmp_path: Path
) -> None:
    """Started off loopback (so with keys); the keys vanish: 503, never open."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    set_context(Context(settings.model_copy(update={"secrets_dir": secrets})))
    ingest_app._ingest = None
    auth.allow_keyless(False)  # what check_start leaves for a non-loopback host
    import functions_framework

    from tests.ingest.conftest import SOURCE

    client = functions_framework.create_app("ingest", str(SOURCE), "http").test_client()
    try:
        resp = client.post("/ingest", json=EVENT)
        assert resp.status_code == 503
        assert resp.headers["Retry-After"] == "30"
        assert "no API key configured" in resp.json["error"]
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json["checks"]["auth"] == "error: no ingest_api_keys configured"
    finally:
        set_context(None)
        ingest_app._ingest = None


def test_auth_off_accepts_everything_and_says_so(settings: Settings) -> None:
    client = make_client(settings.model_copy(update={"ingest_auth": "off"}))
    try:
        headers = {"X-API-KEY": "anything"}
        assert client.post("/ingest", json=EVENT, headers=headers).status_code == 202
        assert client.get("/readyz").json["checks"]["auth"] == "ok (off: MUTT_INGEST_AUTH=off)"
    finally:
        set_context(None)
        ingest_app._ingest = None
        auth.allow_keyless(False)


def test_loopback_without_keys_is_open(client: FlaskClient) -> None:
    assert client.post("/ingest", json=EVENT).status_code == 202
    checks = client.get("/readyz").json["checks"]
    assert checks["auth"] == "ok (off: no ingest_api_keys, loopback only)"


def test_every_key_is_compared_whatever_matches_first(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bytes] = []
    real = auth.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append(b)
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    keys = ["first-key", "second-key", "third-key"]
    assert auth.matches("first-key", keys)
    assert calls == [k.encode() for k in keys]  # no early exit on the first match
    calls.clear()
    assert not auth.matches("nope", keys)
    assert len(calls) == 3


def test_throttled_answers_cost_no_key_comparison(
    strict: tuple[FlaskClient, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = strict
    bad = {"X-API-KEY": "guess", "X-Forwarded-For": "203.0.113.50"}
    for _ in range(3):
        client.post("/ingest", json=EVENT, headers=bad)
    compared: list[str] = []
    monkeypatch.setattr(auth, "matches", lambda given, keys: compared.append(given) or False)
    assert client.post("/ingest", json=EVENT, headers=bad).status_code == 429
    assert compared == []  # what it costs instead: bench/auth_flood_bench.py


def test_a_throttled_address_is_answered_before_flask(
    strict: tuple[FlaskClient, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 429 comes from the WSGI gate (functions/ingest/throttle_gate.py), with the
    same answer the app gives: the app itself is never called for it."""
    client, _ = strict
    bad = {"X-API-KEY": "guess", "X-Forwarded-For": "203.0.113.60", "X-Correlation-ID": "c-1"}
    for _ in range(3):
        assert client.post("/ingest", json=EVENT, headers=bad).status_code == 401
    requests_429 = metric("mutt_ingest_requests_total", route="legacy", code="429")
    rejected = metric("mutt_events_rejected_total", reason="auth_throttled")

    called: list[str] = []

    def spy(self: object, request: flask.Request) -> flask.Response:
        called.append(request.path)
        return flask.Response(b"", 204)

    monkeypatch.setattr(ingest_app.Ingest, "__call__", spy)
    answer = client.post("/ingest", json=EVENT, headers=bad)
    assert answer.status_code == 429
    assert called == []
    assert answer.json["error"].startswith("too many failed authentications")
    assert 1 <= answer.json["retry_after_seconds"] == int(answer.headers["Retry-After"]) <= 60
    assert answer.headers["X-Correlation-ID"] == "c-1"
    assert answer.headers["X-MUTT-API-Version"]
    assert answer.headers["Deprecation"] == "true"  # /ingest is a deprecated route
    assert metric("mutt_ingest_requests_total", route="legacy", code="429") - requests_429 == 1
    assert metric("mutt_events_rejected_total", reason="auth_throttled") - rejected == 1
    # Probes, and other addresses, still reach the app.
    assert client.get("/healthz", headers=bad).status_code == 204
    other = {"X-API-KEY": "guess", "X-Forwarded-For": "198.51.100.60"}
    assert client.post("/ingest", json=EVENT, headers=other).status_code == 204
    assert called == ["/healthz", "/ingest"]
