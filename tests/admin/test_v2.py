"""``/api/v2``: errors that name the field, cursors, ETag / If-Match, DLQ, silences, status."""

from __future__ import annotations

import orjson
import pytest
import redis

from functions.alert.catalog import version_key
from tests.admin.conftest import Admin

pytestmark = pytest.mark.slow

RULE = {
    "match_string": "BGP-5-ADJCHANGE",
    "prod_handling": "Page_only",
    "dev_handling": "Ignore",
    "team_assignment": "NetOps",
    "reason": "CHG-9 page on BGP flaps",
}


def new_rule(admin: Admin, **fields: object) -> dict[str, object]:
    got = admin.call("POST", "/api/v2/rules", json={**RULE, **fields})
    assert got.status_code == 201, got.text
    assert got.headers["ETag"] == got.json()["etag"]
    return dict(got.json())


def test_errors_are_objects_naming_the_field(admin: Admin) -> None:
    got = admin.call("POST", "/api/v2/rules", json={**RULE, "dev_handling": "Ignroe"})
    assert got.status_code == 400
    error = got.json()["error"]
    assert (error["status"], error["code"], error["field"]) == (400, "invalid", "dev_handling")
    got = admin.call("POST", "/api/v2/rules", json={**RULE, "colour": "red"})
    assert got.json()["error"]["field"] == "colour"
    got = admin.call("POST", "/api/v2/rules", json={k: v for k, v in RULE.items() if k != "reason"})
    assert got.json()["error"]["field"] == "reason"
    got = admin.call("GET", "/api/v2/rules", role=None)
    assert got.json()["error"]["code"] == "unauthenticated"


def test_a_write_bumps_the_rules_version_so_alert_instances_reload(admin: Admin) -> None:
    r = redis.Redis.from_url(admin.settings.redis_url or "")
    before = int(r.get(version_key(admin.settings.namespace)) or 0)
    new_rule(admin)
    assert int(r.get(version_key(admin.settings.namespace)) or 0) == before + 1
    r.close()


def test_if_match_guards_concurrent_edits(admin: Admin) -> None:
    rule = new_rule(admin, priority=40)
    path = f"/api/v2/rules/{rule['id']}"
    change = {**RULE, "priority": 41}
    assert admin.call("PUT", path, json=change).status_code == 428
    first = admin.call("PUT", path, json=change, headers={"If-Match": str(rule["etag"])})
    assert first.status_code == 200, first.text
    assert first.headers["ETag"] != rule["etag"]
    stale = admin.call(
        "PUT", path, json={**change, "priority": 42}, headers={"If-Match": str(rule["etag"])}
    )
    assert stale.status_code == 412
    assert admin.call("GET", path).json()["priority"] == 41
    gone = admin.call(
        "DELETE", path + "?reason=cleanup", headers={"If-Match": first.headers["ETag"]}
    )
    assert gone.status_code == 204
    assert admin.call("GET", path).status_code == 404


def test_rules_page_with_a_cursor_in_evaluation_order(admin: Admin) -> None:
    for prio in (1001, 1002, 1003):
        new_rule(admin, priority=prio, match_string=f"cursor-test-{prio}")
    seen: list[int] = []
    cursor = None
    while True:
        query = "?q=cursor-test&limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = admin.call("GET", "/api/v2/rules" + query).json()
        seen += [r["priority"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [1001, 1002, 1003]
    bad = admin.call("GET", "/api/v2/rules?cursor=garbage!")
    assert bad.json()["error"]["field"] == "cursor"


def test_silences_are_added_listed_and_removed_with_audit(admin: Admin) -> None:
    got = admin.call(
        "POST",
        "/api/v2/silences",
        role="operator",
        json={"host": "core-rtr-*", "duration_seconds": 3600, "reason": "CHG-5 IOS upgrade"},
    )
    assert got.status_code == 201, got.text
    silence_id = got.json()["id"]
    assert got.json()["state"] == "active"
    items = admin.call("GET", "/api/v2/silences", role="viewer").json()["items"]
    assert silence_id in [s["id"] for s in items]
    assert (
        admin.call(
            "DELETE", f"/api/v2/silences/{silence_id}?reason=done", role="viewer"
        ).status_code
        == 403
    )
    assert (
        admin.call(
            "DELETE", f"/api/v2/silences/{silence_id}?reason=done", role="operator"
        ).status_code
        == 204
    )
    audit = admin.call(
        "GET", f"/api/v2/audit/config?table_name=silences&record_id={silence_id}"
    ).json()
    assert [a["operation"] for a in audit["items"]] == ["DELETE", "CREATE"]
    bad = admin.call(
        "POST",
        "/api/v2/silences",
        json={"host": "x", "cron": "not cron", "duration_seconds": 60, "reason": "r"},
    )
    assert bad.json()["error"]["field"] == "cron"


def test_dlq_list_and_replay(admin: Admin) -> None:
    r = redis.Redis.from_url(admin.settings.redis_url or "")
    ce = {
        "specversion": "1.0",
        "id": "a1",
        "source": "/t",
        "type": "io.mutt.alert.raised.v1",
        "data": {"summary": "s"},
    }
    entry_id = r.xadd(
        f"{admin.settings.namespace}:{{p}}:dlq:forward",
        {"ce": orjson.dumps(ce), "dlq_reason": "gave up after 10 attempts"},
    ).decode()
    listed = admin.call("GET", "/api/v2/dlq?stage=forward", role="viewer").json()["items"]
    assert [e["id"] for e in listed] == [entry_id]
    body = {"stage": "forward", "ids": [entry_id], "reason": "sink fixed"}
    assert admin.call("POST", "/api/v2/dlq/replay", role="viewer", json=body).status_code == 403
    got = admin.call("POST", "/api/v2/dlq/replay", role="operator", json=body)
    assert got.status_code == 200, got.text
    assert got.json()["replayed"] == 1
    assert r.xlen(f"{admin.settings.namespace}:{{p}}:dlq:forward") == 0
    assert r.xlen(f"{admin.settings.namespace}:{{p}}:alerts") == 1
    # A NUL cannot be stored (PostgreSQL text / jsonb): a clear 400, not a 503 (schemathesis)
    bad = {"reason_contains": "x\u0000", "reason": "why"}
    refused = admin.call("POST", "/api/v2/dlq/replay", role="operator", json=bad)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["field"] == "reason_contains"
    r.close()


def test_status_unhandled_slo_correlation_and_settings(admin: Admin) -> None:
    status = admin.call("GET", "/api/v2/status", role="viewer").json()
    assert "streams" in status and "breakers" in status
    assert admin.call("GET", "/api/v2/unhandled").json()["items"] == []
    assert admin.call("GET", "/api/v2/slo").json()["status"] in (
        "ok",
        "warning",
        "breaching",
        "critical",
    )
    assert "flap_threshold" in admin.call("GET", "/api/v2/correlation").json()["settings"]
    config = admin.call("GET", "/api/v2/config").json()["items"]
    assert any(c["key"] == "breaker_threshold" for c in config)
    got = admin.call("PUT", "/api/v2/config/breaker_threshold", role="operator", json={"value": 8})
    assert got.json()["error"]["field"] == "reason"


def test_preview_shows_no_match_on_an_empty_audit(admin: Admin) -> None:
    body = {k: v for k, v in RULE.items() if k != "reason"}
    got = admin.call("POST", "/api/v2/rules/preview", role="viewer", json=body)
    assert got.status_code == 200, got.text
    assert got.json()["matched"] == 0


def test_openapi_document_and_docs_page(admin: Admin) -> None:
    doc = admin.call("GET", "/api/v1/openapi.json", role=None).json()
    assert doc["openapi"].startswith("3.1")
    assert "/api/v1/rules" in doc["paths"] and "/api/v2/rules/{rule_id}" in doc["paths"]
    page = admin.call("GET", "/api/docs", role=None)
    assert "/api/v2/dlq/replay" in page.text
