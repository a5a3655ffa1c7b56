"""``mutt rules``: rules as code against real PostgreSQL and Redis.

An invalid file changes nothing and names the rule, the field and why; a
valid one is diffed, applied in one transaction, audited per change and
announced by a version bump; export and apply round-trip with no diff.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pg8000.native
import pytest
import redis
import yaml

from functions.alert.cache import version_key
from mutt.commands.common import RefusedError
from mutt.commands.rules import Desired, apply_plan, build_plan, load_file, read_state
from shared.config import Settings
from tests.support.cli import Cli, as_process, in_process

DEMO = resources.files("mutt.demo_data").joinpath("rules.yaml").read_text()


@pytest.fixture
def cli(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Cli:
    return in_process(settings, monkeypatch, capsys)


@pytest.fixture
def who(pg: pg8000.native.Connection) -> Iterator[str]:
    """A unique operator name; the rules tables and this operator's audit rows are removed after."""
    name = f"tester-{uuid.uuid4().hex[:8]}"
    yield name
    pg.run("DELETE FROM alert_rules; DELETE FROM development_hosts; DELETE FROM device_teams")
    pg.run("DELETE FROM config_audit_log WHERE changed_by = :by", by=name)


def version(r: redis.Redis, settings: Settings) -> int:
    raw = r.get(version_key(settings.namespace))
    return int(raw) if raw else 0


def audit_rows(pg: pg8000.native.Connection, who: str) -> list[dict[str, Any]]:
    cols = ["operation", "table_name", "record_id", "old_values", "new_values", "reason"]
    rows = pg.run(
        "SELECT operation, table_name, record_id, old_values, new_values, reason, correlation_id"
        " FROM config_audit_log WHERE changed_by = :by ORDER BY id",
        by=who,
    )
    return [dict(zip([*cols, "correlation_id"], row, strict=True)) for row in rows]


def export(cli: Cli, path: Path) -> dict[str, Any]:
    ran = cli("rules", "export", "--out", str(path))
    assert ran.code == 0, ran.err
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    return doc


def write(path: Path, doc: object) -> Path:
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_invalid_file_changes_nothing_and_names_each_bad_rule(
    settings: Settings,
    demo_rules: None,
    who: str,
    pg: pg8000.native.Connection,
    r: redis.Redis,
    tmp_path: Path,
    cli: Cli,
) -> None:
    doc = export(cli, tmp_path / "rules.yaml")
    regex_rule = next(x for x in doc["rules"] if x["match_type"] == "regex")
    regex_rule["match_string"] = "(?=lookahead)x"
    doc["rules"][0]["dev_handling"] = "Ignroe"
    doc["rules"].append(
        {
            "match_type": "oid_prefix",
            "trap_oid": "1.3.6.*",
            "prod_handling": "Page_only",
            "dev_handling": "Ignore",
            "team_assignment": "X",
        }
    )
    doc["rules"][1]["priority"] = 999  # a valid change that must not be applied either
    bad = write(tmp_path / "bad.yaml", doc)
    before, before_version = read_state(pg), version(r, settings)

    ran = as_process(settings, "rules", "apply", str(bad), "--reason", "x", "--by", who, "--yes")

    assert ran.code == 1
    assert "Traceback" not in ran.err
    text = ran.err
    first_id = doc["rules"][0]["id"]
    assert f"rule #1 (id {first_id}): dev_handling: unknown handling 'Ignroe'" in text
    position = doc["rules"].index(regex_rule) + 1
    assert f"rule #{position} (id {regex_rule['id']}): match_string:" in text
    assert "does not compile under RE2" in text
    new_pos = len(doc["rules"])
    assert f"rule #{new_pos}: trap_oid: must be a numeric dotted OID" in text
    lines = bad.read_text().splitlines()
    assert f"bad.yaml:{lines.index('- id: ' + str(first_id)) + 1}: rule #1" in text
    assert ran.err_lines[-1] == f"mutt: {bad}: 3 problems (listed above); nothing was changed"
    assert read_state(pg) == before
    assert version(r, settings) == before_version
    assert audit_rows(pg, who) == []


def test_one_problem_is_one_error_line(
    demo_rules: None, who: str, tmp_path: Path, cli: Cli
) -> None:
    doc = yaml.safe_load(DEMO)
    doc["rules"][2]["colour"] = "red"
    ran = cli("rules", "apply", str(write(tmp_path / "r.yaml", doc)), "--reason", "x", "--yes")
    assert ran.code == 1
    assert ran.err_lines == [
        f"mutt: {tmp_path / 'r.yaml'}:{_line_of_rule(tmp_path / 'r.yaml', 3)}: rule #3:"
        " colour: is not a rule field; nothing was changed"
    ]


def _line_of_rule(path: Path, number: int) -> int:
    starts = [i for i, line in enumerate(path.read_text().splitlines(), 1) if line.startswith("- ")]
    return starts[number - 1]


def test_apply_export_apply_shows_no_changes(
    settings: Settings, who: str, pg: pg8000.native.Connection, tmp_path: Path, cli: Cli
) -> None:
    demo = tmp_path / "demo.yaml"
    demo.write_text(DEMO)
    first = cli("rules", "apply", str(demo), "--reason", "seed", "--by", who, "--yes")
    assert first.code == 0, first.err
    assert "rules: 7 created; dev hosts: 2 created; teams: 3 created" in first.out

    exported = tmp_path / "exported.yaml"
    export(cli, exported)
    again = cli("rules", "apply", str(exported), "--reason", "noop", "--by", who, "--yes")
    assert again.code == 0, again.err
    assert again.out.strip() == "no changes: the database already matches the file"
    # and applying the original again (no ids) would create duplicates, not be silent:
    dup = cli("rules", "apply", str(demo), "--reason", "dup", "--by", who, "--dry-run")
    assert "7 created" in dup.out and "7 deleted" in dup.out
    export(cli, tmp_path / "second.yaml")
    assert (tmp_path / "second.yaml").read_text() == exported.read_text()  # stable order
    assert len(audit_rows(pg, who)) == 12


def test_apply_writes_one_audit_row_per_change_and_bumps_the_version(
    settings: Settings,
    demo_rules: None,
    who: str,
    pg: pg8000.native.Connection,
    r: redis.Redis,
    tmp_path: Path,
    cli: Cli,
) -> None:
    doc = export(cli, tmp_path / "rules.yaml")
    changed, removed = doc["rules"][0], doc["rules"][-1]
    changed["priority"] = 1
    changed["description"] = "pages NetOps"
    doc["rules"].remove(removed)
    doc["rules"].append(
        {
            "match_type": "regex",
            "match_string": r"BGP-5-ADJCHANGE.*Down",
            "prod_handling": "Page_only",
            "dev_handling": "Ignore",
            "team_assignment": "NetOps",
        }
    )
    doc["development_hosts"].append("Lab-Router-1")
    doc["device_teams"]["wan-router-04.wan.example.com"] = "WAN"
    before = version(r, settings)

    ran = cli(
        "rules",
        "apply",
        str(write(tmp_path / "new.yaml", doc)),
        "--reason",
        "CHG-42",
        "--by",
        who,
        "--yes",
    )

    assert ran.code == 0, ran.err
    assert f"~ rule {changed['id']}: priority 5 → 1; description None → 'pages NetOps'" in ran.out
    assert f"- rule {removed['id']}" in ran.out
    assert "+ new rule (#7 in the file)" in ran.out
    assert "+ lab-router-1" in ran.out
    assert "~ wan-router-04.wan.example.com: NetOps → WAN" in ran.out
    assert version(r, settings) == before + 1
    rows = audit_rows(pg, who)
    assert len(rows) == 5
    assert len({row["correlation_id"] for row in rows}) == 1
    uuid.UUID(rows[0]["correlation_id"])
    assert all(row["reason"] == "CHG-42" for row in rows)
    by_op = {(row["operation"], row["table_name"]): row for row in rows}
    update = by_op[("UPDATE", "alert_rules")]
    assert update["record_id"] == str(changed["id"])
    assert update["old_values"]["priority"] == 5 and update["new_values"]["priority"] == 1
    delete = by_op[("DELETE", "alert_rules")]
    assert delete["record_id"] == str(removed["id"]) and delete["new_values"] is None
    assert delete["old_values"]["match_string"] == removed["match_string"]
    create = by_op[("CREATE", "alert_rules")]
    (stored,) = pg.run(
        "SELECT match_string, priority FROM alert_rules WHERE id = :id",
        id=int(create["record_id"]),
    )
    assert stored == [r"BGP-5-ADJCHANGE.*Down", 100]
    assert by_op[("CREATE", "development_hosts")]["record_id"] == "lab-router-1"
    team = by_op[("UPDATE", "device_teams")]
    assert team["old_values"] == {"team_assignment": "NetOps"}
    assert team["new_values"] == {"team_assignment": "WAN"}

    show = cli("rules", "show", str(changed["id"]))
    assert "description: pages NetOps" in show.out
    assert f"UPDATE by {who}: CHG-42 [priority 5 → 1" in show.out
    listed = cli("audit", "config", "--by", who, "--table", "alert_rules")
    assert listed.out.count(who) == 3


def test_no_prune_keeps_what_the_file_does_not_mention(
    demo_rules: None, who: str, pg: pg8000.native.Connection, tmp_path: Path, cli: Cli
) -> None:
    doc = {
        "rules": [
            {
                "match_type": "contains",
                "match_string": "fan fail",
                "prod_handling": "Ticket_only",
                "dev_handling": "Ignore",
                "team_assignment": "Facilities",
            }
        ]
    }
    path = write(tmp_path / "one.yaml", doc)
    ran = cli("rules", "apply", str(path), "--reason", "add", "--by", who, "--no-prune", "--yes")
    assert ran.code == 0, ran.err
    assert len(read_state(pg).rules) == 8
    assert len(read_state(pg).hosts) == 2
    pruned = cli("rules", "apply", str(path), "--reason", "add", "--by", who, "--dry-run")
    assert "rules: 1 created, 8 deleted" in pruned.out
    assert "dry run: nothing was changed" in pruned.out
    assert len(read_state(pg).rules) == 8


def test_an_id_that_does_not_exist_is_refused(
    demo_rules: None, who: str, tmp_path: Path, cli: Cli
) -> None:
    doc = yaml.safe_load(DEMO)
    doc["rules"][0]["id"] = 999_999
    ran = cli("rules", "apply", str(write(tmp_path / "r.yaml", doc)), "--reason", "x", "--yes")
    assert ran.code == 1
    assert "rule id(s) 999999 do not exist" in ran.err


def test_apply_is_refused_when_the_database_moved_after_the_diff(
    demo_rules: None, who: str, pg: pg8000.native.Connection, tmp_path: Path
) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("rules: []\n")
    desired: Desired = load_file(str(path))
    shown = build_plan(read_state(pg), desired, prune=True)
    pg.run("UPDATE alert_rules SET priority = priority + 1 WHERE priority = 5")
    with pytest.raises(RefusedError, match="changed in the database"):
        apply_plan(pg, desired, shown, prune=True, changed_by=who, reason="x", correlation_id="c")
    assert len(read_state(pg).rules) == 7


def test_apply_needs_yes_without_a_terminal(
    settings: Settings, demo_rules: None, who: str, tmp_path: Path
) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("rules: []\n")
    ran = as_process(settings, "rules", "apply", str(path), "--reason", "x", "--by", who)
    assert ran.code == 1
    assert ran.err_lines[-1].startswith("mutt: apply 12 changes? — not confirmed; add --yes")


def test_rules_test_explains_and_decides(demo_rules: None, cli: Cli) -> None:
    ran = cli(
        "rules", "test", "--message", "Gi0/1 changed state to down", "--host", "DNS-server-10"
    )
    assert ran.code == 0, ran.err
    assert "MATCH rule" in ran.out
    assert "decision: environment dev, handling Ticket_only, team NetOps" in ran.out

    ids = cli("rules", "test", "--message", "IDS: port scan", "--severity", "alert")
    assert "needs severity" not in ids.out.split("MATCH")[1]
    assert "handling Page_only, team Security" in ids.out

    trap = cli("rules", "test", "--message", "x", "--oid", ".1.3.6.1.4.1.9.9.117.2.0.6")
    assert "is under 1.3.6.1.4.1.9.9.117" in trap.out
    assert "team Facilities" in trap.out

    none = cli(
        "rules", "test", "--message", "all quiet", "--host", "core-router-01.dc1.example.com"
    )
    assert "=> no rule matched" in none.out
    assert "decision: unhandled" in none.out and "team NetOps" in none.out

    bad = cli("rules", "test", "--message", "x", "--severity", "loud")
    assert bad.code == 1 and bad.err_lines[0].startswith("mutt: --severity: unknown severity")


def test_rules_list_show_and_reload(
    settings: Settings, demo_rules: None, r: redis.Redis, cli: Cli
) -> None:
    import orjson

    listed = cli("rules", "list", "--json")
    rules = [orjson.loads(line) for line in listed.out.splitlines()]
    assert [x["priority"] for x in rules] == sorted(x["priority"] for x in rules)
    assert len(rules) == 7
    table = cli("rules", "list")
    assert table.out.splitlines()[0].split()[:4] == ["ID", "PRIO", "TYPE", "MATCH"]
    assert "7 rules (7 active), 2 dev hosts, 3 device teams" in table.out
    show = cli("rules", "show", str(rules[0]["id"]))
    assert (
        yaml.safe_load(show.out.split("created_at")[0])["match_string"] == rules[0]["match_string"]
    )
    before = version(r, settings)
    reload = cli("rules", "reload")
    assert reload.code == 0 and version(r, settings) == before + 1
    missing = cli("rules", "show", "987654")
    assert missing.code == 1
    assert missing.err_lines == ["mutt: no rule with id 987654 (see `mutt rules list`)"]
