"""A write through the API and through ``mutt`` take the same path: each sees the other's."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mutt.cli import main as mutt_main
from tests.admin.conftest import Admin
from tests.support.processes import settings_env

pytestmark = pytest.mark.slow


@pytest.fixture
def cli(admin: Admin, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    for key, value in settings_env(admin.settings).items():
        if key.startswith("MUTT_"):
            monkeypatch.setenv(key, value)

    def run(*argv: str) -> tuple[int, str]:
        capsys.readouterr()
        code = mutt_main(list(argv))
        return code, capsys.readouterr().out

    return run


def test_an_api_rule_is_listed_by_the_cli_and_round_trips(
    admin: Admin, cli, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    body = {
        "match_string": f"SAME-PATH-{tmp_path.name}",
        "prod_handling": "Ticket_only",
        "dev_handling": "Ignore",
        "team_assignment": "Storage",
        "reason": "CHG-3",
    }
    rule_id = admin.call("POST", "/api/v2/rules", json=body).json()["id"]
    code, out = cli("rules", "list", "--json")
    assert code == 0
    assert f'"id":{rule_id}' in out and body["match_string"] in out
    code, out = cli("rules", "export")
    assert code == 0
    exported = tmp_path / "rules.yaml"
    exported.write_text(out)
    code, out = cli("rules", "apply", str(exported), "--reason", "no-op", "--yes")
    assert (code, out.strip()) == (0, "no changes: the database already matches the file")
    doc = yaml.safe_load(exported.read_text())
    mine = next(r for r in doc["rules"] if r["id"] == rule_id)
    mine["priority"] = 3
    exported.write_text(yaml.safe_dump(doc))
    assert cli("rules", "apply", str(exported), "--reason", "via CLI", "--yes")[0] == 0
    assert admin.call("GET", f"/api/v1/rules/{rule_id}").json()["priority"] == 3
    history = admin.call(
        "GET", f"/api/v2/audit/config?table_name=alert_rules&record_id={rule_id}"
    ).json()
    assert [(h["operation"], h["reason"]) for h in history["items"]] == [
        ("UPDATE", "via CLI"),
        ("CREATE", "CHG-3"),
    ]


def test_a_cli_setting_change_is_seen_by_the_api(admin: Admin, cli) -> None:  # type: ignore[no-untyped-def]
    code, _ = cli("config", "set", "flap_threshold", "7", "--reason", "cli change", "--by", "alice")
    assert code == 0
    assert admin.call("GET", "/api/v1/config").json()["config"]["flap_threshold"] == 7
    rows = admin.call("GET", "/api/v1/audit?changed_by=alice").json()["logs"]
    assert rows[0]["record_id"] == "flap_threshold"
