"""Keys, roles and failed logins: who may do what, and what guessing costs."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
import redis
import requests
from hypothesis import given
from hypothesis import strategies as st

from functions.admin.keys import ApiKey, Principal, parse_keys
from functions.admin.limiter import FailureLimiter, client_of
from tests.admin.conftest import admin_settings, drop, serve_admin
from tests.support.processes import stop

KEY = "k" * 20


@pytest.fixture
def fresh_admin(servers: tuple[str, str]) -> Iterator[tuple[str, redis.Redis, str]]:
    """An admin process of its own (its failure counts are its own), JSON-format keys."""
    settings = admin_settings(servers)
    secret = orjson.dumps([{"role": "viewer", "key": KEY, "name": "dashboards"}]).decode()
    r = redis.Redis.from_url(servers[0])
    r.hset(f"{settings.namespace}:config", "admin_auth_failures_per_minute", "3")
    proc, url = serve_admin(settings, secret)
    try:
        yield url, r, settings.namespace
    finally:
        stop(proc)
        drop(settings)
        r.close()


@pytest.mark.slow
def test_failed_logins_are_limited_per_client(fresh_admin: tuple[str, redis.Redis, str]) -> None:
    url = fresh_admin[0]
    for _ in range(3):
        got = requests.get(url + "/api/v1/rules", headers={"X-API-KEY": "x" * 20}, timeout=10)
        assert got.status_code == 401
    got = requests.get(url + "/api/v1/rules", headers={"X-API-KEY": KEY}, timeout=10)
    assert got.status_code == 429
    assert int(got.headers["Retry-After"]) >= 1
    other = requests.get(
        url + "/api/v1/rules", headers={"X-API-KEY": KEY, "X-Forwarded-For": "10.9.9.9"}, timeout=10
    )
    assert other.status_code == 200  # another client behind the local proxy is not blocked


@pytest.mark.slow
def test_json_keys_name_who_changed_what(fresh_admin: tuple[str, redis.Redis, str]) -> None:
    url = fresh_admin[0]
    got = requests.get(
        url + "/api/v1/rules", headers={"Authorization": f"Bearer {KEY}"}, timeout=10
    )
    assert got.status_code == 200
    got = requests.post(
        url + "/api/v1/dev-hosts", json={"hostname": "h"}, headers={"X-API-KEY": KEY}, timeout=10
    )
    assert got.status_code == 403
    assert "admin role" in got.json()["error"]


@pytest.mark.slow
def test_without_configured_keys_nobody_gets_in(servers: tuple[str, str]) -> None:
    settings = admin_settings(servers)
    proc, url = serve_admin(settings, "")
    try:
        got = requests.get(url + "/api/v1/rules", headers={"X-API-KEY": KEY}, timeout=10)
        assert got.status_code == 401
        got = requests.get(url + "/api/v1/rules", timeout=10)
        assert "no admin API key is configured" in got.json()["error"]
    finally:
        stop(proc)
        drop(settings)


def test_roles_are_ordered() -> None:
    viewer, operator, admin = (Principal(r, r, "id") for r in ("viewer", "operator", "admin"))
    assert admin.can("operator") and admin.can("viewer") and operator.can("viewer")
    assert not viewer.can("operator") and not operator.can("admin")


def test_key_secret_formats() -> None:
    lines = parse_keys("# team keys\nadmin:" + "a" * 16 + "\n\nviewer: " + "b" * 16 + "\n")
    assert [(k.role, k.secret) for k in lines] == [("admin", "a" * 16), ("viewer", "b" * 16)]
    assert lines[0].name.startswith("api-admin-")
    doc = parse_keys(
        orjson.dumps({"keys": [{"role": "operator", "key": "c" * 16, "name": "noc"}]}).decode()
    )
    assert doc == [ApiKey("operator", "c" * 16, "noc")]
    with pytest.raises(ValueError, match="role"):
        parse_keys("root:" + "a" * 16)
    with pytest.raises(ValueError, match="16 characters"):
        parse_keys("admin:short")
    with pytest.raises(ValueError, match="line 1"):
        parse_keys("no-colon-here-at-all")


@given(st.text(max_size=200))
def test_any_secret_text_parses_or_names_the_problem_without_the_key(text: str) -> None:
    try:
        parse_keys(text)
    except ValueError as exc:
        secret = text.partition(":")[2].strip()
        assert len(secret) < 8 or secret not in str(exc)


def test_the_limiter_forgets_after_the_window() -> None:
    limiter = FailureLimiter(window=60)
    for t in range(3):
        limiter.failed("c", now=float(t))
    assert limiter.retry_after("c", 3, now=3.0) == 57
    assert limiter.retry_after("c", 4, now=3.0) is None
    assert limiter.retry_after("c", 3, now=61.0) is None
    assert limiter.retry_after("c", 0, now=3.0) is None  # 0 = off


def test_the_client_behind_a_local_proxy_is_the_last_forwarded_address() -> None:
    assert client_of("127.0.0.1", "1.2.3.4, 10.0.0.7") == "10.0.0.7"
    assert client_of("192.0.2.1", "1.2.3.4") == "192.0.2.1"  # a remote peer cannot forge it
