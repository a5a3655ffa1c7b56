"""``/api/v1`` with the original MUTT v2.5 payloads: what automation sends keeps working."""

from __future__ import annotations

import pg8000.native
import pytest

from tests.admin.conftest import Admin

pytestmark = pytest.mark.slow

# The body the original's docs and scripts send to create a rule.
ORIGINAL_RULE = {
    "match_string": "LINK-DOWN",
    "match_type": "contains",
    "priority": 5,
    "prod_handling": "Page_and_ticket",
    "dev_handling": "Ticket_only",
    "team_assignment": "NetOps",
}


def test_without_a_key_every_api_route_answers_401(admin: Admin) -> None:
    for path in ("/api/v1/rules", "/api/v1/config", "/api/v1/audit", "/api/v1/metrics"):
        got = admin.call("GET", path, role=None)
        assert got.status_code == 401, path
        assert "error" in got.json()


def test_the_key_is_never_taken_from_the_query_string(admin: Admin) -> None:
    from tests.admin.conftest import KEYS

    got = admin.call("GET", f"/api/v1/rules?api_key={KEYS['admin']}", role=None)
    assert got.status_code == 401


def test_health_metrics_and_version_need_no_key(admin: Admin) -> None:
    assert admin.call("GET", "/health", role=None).json()["status"] == "healthy"
    assert admin.call("GET", "/metrics", role=None).status_code == 200
    assert "v1" in admin.call("GET", "/api/v1/version", role=None).json()["supported_versions"]


def test_the_original_rule_payload_is_created_listed_and_audited(
    admin: Admin, apg: pg8000.native.Connection
) -> None:
    created = admin.call("POST", "/api/v1/rules", json=ORIGINAL_RULE)
    assert created.status_code == 201, created.text
    rule_id = created.json()["id"]
    assert isinstance(rule_id, int)
    assert created.json()["message"]
    listed = admin.call("GET", "/api/v1/rules", role="viewer").json()["rules"]
    mine = [r for r in listed if r["id"] == rule_id]
    assert mine and mine[0]["match_string"] == "LINK-DOWN"
    assert mine[0]["team_assignment"] == "NetOps"
    one = admin.call("GET", f"/api/v1/rules/{rule_id}", role="viewer").json()
    assert one["prod_handling"] == "Page_and_ticket"
    audit = apg.run(
        "SELECT operation, changed_by FROM config_audit_log"
        " WHERE table_name = 'alert_rules' AND record_id = :r",
        r=str(rule_id),
    )
    assert audit == [["CREATE", "api-admin-" + audit[0][1].rsplit("-", 1)[-1]]]


def test_an_invalid_regex_is_400_naming_match_string(admin: Admin) -> None:
    bad = {**ORIGINAL_RULE, "match_type": "regex", "match_string": "(?=lookahead)"}
    got = admin.call("POST", "/api/v1/rules", json=bad)
    assert got.status_code == 400
    assert got.json()["field"] == "match_string"
    assert "match_string" in got.json()["error"]


@pytest.mark.parametrize("missing", ["prod_handling", "dev_handling", "team_assignment"])
def test_a_missing_field_is_400(admin: Admin, missing: str) -> None:
    body = {k: v for k, v in ORIGINAL_RULE.items() if k != missing}
    got = admin.call("POST", "/api/v1/rules", json=body)
    assert got.status_code == 400
    assert missing in got.json()["error"]


def test_neither_match_string_nor_oid_is_400(admin: Admin) -> None:
    body = {k: v for k, v in ORIGINAL_RULE.items() if k != "match_string"}
    assert admin.call("POST", "/api/v1/rules", json=body).status_code == 400


def test_put_changes_given_fields_and_delete_removes(admin: Admin) -> None:
    rule_id = admin.call("POST", "/api/v1/rules", json=ORIGINAL_RULE).json()["id"]
    got = admin.call("PUT", f"/api/v1/rules/{rule_id}", json={"priority": 7})
    assert got.status_code == 200, got.text
    rule = admin.call("GET", f"/api/v1/rules/{rule_id}").json()
    assert (rule["priority"], rule["match_string"]) == (7, "LINK-DOWN")
    assert admin.call("DELETE", f"/api/v1/rules/{rule_id}").status_code == 200
    assert admin.call("GET", f"/api/v1/rules/{rule_id}").status_code == 404
    assert admin.call("PUT", f"/api/v1/rules/{rule_id}", json={"priority": 1}).status_code == 404
    assert admin.call("DELETE", f"/api/v1/rules/{rule_id}").status_code == 404


def test_a_viewer_cannot_write(admin: Admin) -> None:
    got = admin.call("POST", "/api/v1/rules", role="viewer", json=ORIGINAL_RULE)
    assert got.status_code == 403
    got = admin.call("PUT", "/api/v1/config/breaker_threshold", role="viewer", json={"value": 7})
    assert got.status_code == 403


def test_an_operator_changes_settings_but_not_rules(admin: Admin) -> None:
    got = admin.call("POST", "/api/v1/rules", role="operator", json=ORIGINAL_RULE)
    assert got.status_code == 403
    got = admin.call(
        "PUT",
        "/api/v1/config/breaker_threshold",
        role="operator",
        json={"value": 9, "reason": "CHG-1 flaky webhook"},
    )
    assert got.status_code == 200, got.text
    assert got.json()["new_value"] == 9


def test_config_change_with_reason_shows_in_history(admin: Admin) -> None:
    got = admin.call(
        "PUT",
        "/api/v1/config/forward_rate_limit",
        json={"value": 250, "reason": "INC-77 throttled"},
    )
    assert got.status_code == 200, got.text
    assert admin.call("GET", "/api/v1/config").json()["config"]["forward_rate_limit"] == 250
    history = admin.call("GET", "/api/v1/config/history").json()
    assert history["pagination"]["total"] >= 1
    row = next(h for h in history["history"] if h["record_id"] == "forward_rate_limit")
    assert row["reason"] == "INC-77 throttled"
    assert row["new_values"] == {"value": 250}


def test_a_bad_setting_value_is_400_naming_value(admin: Admin) -> None:
    got = admin.call("PUT", "/api/v1/config/breaker_threshold", json={"value": -5})
    assert (got.status_code, got.json()["field"]) == (400, "value")
    assert admin.call("PUT", "/api/v1/config/no_such", json={"value": 1}).status_code == 404


def test_dev_hosts_and_teams_round_trip(admin: Admin) -> None:
    assert admin.call("POST", "/api/v1/dev-hosts", json={"hostname": "Lab-01"}).status_code == 201
    assert admin.call("POST", "/api/v1/dev-hosts", json={"hostname": "lab-01"}).status_code == 409
    hosts = admin.call("GET", "/api/v1/dev-hosts").json()["hosts"]
    assert {"hostname": "lab-01"} in hosts
    assert admin.call("DELETE", "/api/v1/dev-hosts/lab-01").status_code == 200
    assert admin.call("DELETE", "/api/v1/dev-hosts/lab-01").status_code == 404
    body = {"hostname": "core-rtr-01", "team_assignment": "NetOps"}
    assert admin.call("POST", "/api/v1/teams", json=body).status_code == 201
    assert admin.call("POST", "/api/v1/teams", json=body).status_code == 409
    got = admin.call("PUT", "/api/v1/teams/core-rtr-01", json={"team_assignment": "Core"})
    assert got.status_code == 200
    teams = admin.call("GET", "/api/v1/teams").json()["teams"]
    assert {"hostname": "core-rtr-01", "team_assignment": "Core"} in teams
    assert admin.call("DELETE", "/api/v1/teams/core-rtr-01").status_code == 200
    assert (
        admin.call("PUT", "/api/v1/teams/core-rtr-01", json={"team_assignment": "X"}).status_code
        == 404
    )


def test_config_audit_filters_and_pages(admin: Admin) -> None:
    admin.call("POST", "/api/v1/dev-hosts", json={"hostname": "audit-host", "reason": "why not"})
    got = admin.call("GET", "/api/v1/audit?table_name=development_hosts&operation=CREATE&limit=500")
    assert got.status_code == 200
    doc = got.json()
    assert doc["pagination"]["limit"] == 200  # the original's cap
    assert any(r["record_id"] == "audit-host" and r["reason"] == "why not" for r in doc["logs"])
    bad = admin.call("GET", "/api/v1/audit?start_date=yesterday")
    assert (bad.status_code, bad.json()["field"]) == (400, "start_date")


def test_event_audit_metrics_and_slo_answer(admin: Admin) -> None:
    logs = admin.call("GET", "/api/v1/audit-logs?hostname=x&page=2").json()
    assert logs["pagination"]["page"] == 2
    metrics = admin.call("GET", "/api/v1/metrics").json()
    assert set(metrics["summary"]) == {"current_rate_1m", "avg_rate_15m", "avg_rate_1h"}
    assert len(metrics["chart_24h"]["labels"]) == len(metrics["chart_24h"]["data"]) == 24
    slo = admin.call("GET", "/api/v1/slo").json()
    assert {s["name"] for s in slo["slos"]} == {"delivery", "processing"}
    assert all(s["status"] in ("ok", "warning", "breaching", "critical") for s in slo["slos"])


def test_security_headers_and_no_cors(admin: Admin) -> None:
    got = admin.call("GET", "/api/v1/rules", headers={"Origin": "https://evil.example"})
    assert "frame-ancestors 'none'" in got.headers["Content-Security-Policy"]
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert got.headers["Referrer-Policy"] == "no-referrer"
    assert "Access-Control-Allow-Origin" not in got.headers
