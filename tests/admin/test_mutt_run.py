"""``mutt run --admin-port N`` on the embedded default: the generated key opens the API."""

from __future__ import annotations

import stat

import pytest
import requests

from mutt import runfile
from tests.admin.conftest import Run

pytestmark = pytest.mark.slow

ORIGINAL_RULE = {
    "match_string": "CRITICAL",
    "priority": 10,
    "prod_handling": "Page_and_ticket",
    "dev_handling": "Ticket_only",
    "team_assignment": "NETO",
}


def call(
    run: Run, method: str, path: str, key: str | None = None, **kw: object
) -> requests.Response:
    headers = {"X-API-KEY": key} if key else {}
    return requests.request(method, run.admin_url + path, headers=headers, timeout=30, **kw)  # type: ignore[arg-type]


def test_the_key_file_is_private_and_announced(mutt_run: Run) -> None:
    key_file = mutt_run.data_dir / "admin-api-key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    said = mutt_run.output.read_text()
    assert f"admin console and API on {mutt_run.admin_url}/" in said
    assert str(key_file.resolve()) in said
    info = runfile.read(mutt_run.data_dir)
    assert info is not None and info.admin_url == mutt_run.admin_url


def test_the_done_criteria(mutt_run: Run) -> None:
    key = mutt_run.key
    assert call(mutt_run, "GET", "/api/v1/rules").status_code == 401
    created = call(mutt_run, "POST", "/api/v1/rules", key, json=ORIGINAL_RULE)
    assert created.status_code == 201, created.text
    rule_id = created.json()["id"]
    listed = call(mutt_run, "GET", "/api/v1/rules", key).json()["rules"]
    assert rule_id in [r["id"] for r in listed]
    bad = call(
        mutt_run,
        "POST",
        "/api/v1/rules",
        key,
        json={**ORIGINAL_RULE, "match_type": "regex", "match_string": "a(?!b)"},
    )
    assert bad.status_code == 400 and "match_string" in bad.json()["error"]
    put = call(
        mutt_run,
        "PUT",
        "/api/v1/config/unhandled_threshold",
        key,
        json={"value": 50, "reason": "done-criteria check"},
    )
    assert put.status_code == 200, put.text
    history = call(mutt_run, "GET", "/api/v1/config/history", key).json()["history"]
    assert any(h["reason"] == "done-criteria check" for h in history)
    console = call(mutt_run, "GET", "/", key)
    assert console.status_code == 200 and "text/html" in console.headers["Content-Type"]
    assert "Overview" in console.text
