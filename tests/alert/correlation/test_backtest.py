"""``mutt rules backtest``: audited events replayed against a candidate rules file."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pg8000.native
import pytest
import yaml

from functions.audit.writer import row_from_record, write_rows
from tests.alert.correlation.conftest import RULES, Stage, bgp, link, records


@pytest.fixture
def audited(stage: Stage, pg: pg8000.native.Connection) -> tuple[datetime, datetime]:
    """Events of a private past hour, decided by the stage and written to the audit log."""
    stage.set(audit_unhandled=1, unhandled_threshold=1000)
    at = datetime(1990, 1, 1, tzinfo=UTC) + timedelta(hours=random.randrange(300_000))
    messages = [
        *[link("down")] * 2,
        bgp("Down"),
        *["disk failed in slot 4"] * 3,
        *["heartbeat ok"] * 2,
        *["fan failure in tray 2"] * 2,
        "nothing anyone cares about",
    ]
    events = [stage.event(m, time=at + timedelta(seconds=n)) for n, m in enumerate(messages)]
    rows = [row_from_record(r) for r in records(stage.send(*events))]
    assert write_rows(pg, rows) == len(messages)
    return at - timedelta(minutes=1), at + timedelta(minutes=1)


def candidate(stage: Stage, tmp_path: Path) -> str:
    """The database's rules, edited: one team change, one handling change, one rule
    removed, an Ignore rule that now tickets, and a new rule."""
    ids = stage.rules
    rules = [{"id": ids[r["match_string"]], **r} for r in RULES["rules"]]
    rules[0]["team_assignment"] = "Transport"  # link down
    del rules[1]  # BGP
    rules[1]["prod_handling"] = "Page_only"  # disk failed
    rules[2]["prod_handling"] = "Ticket_only"  # heartbeat
    rules.append(
        {
            "match_type": "contains",
            "match_string": "fan failure",
            "prod_handling": "Ticket_only",
            "dev_handling": "Ignore",
            "team_assignment": "Facilities",
        }
    )
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({**RULES, "rules": rules}))
    return str(path)


def backtest(mutt: Any, path: str, window: tuple[datetime, datetime], *extra: str) -> Any:
    since, until = (w.isoformat() for w in window)
    return mutt("rules", "backtest", path, "--since", since, "--until", until, *extra)


@pytest.mark.parametrize("against", ["current", "recorded"])
def test_backtest_reports_new_lost_and_changed_alerts(
    stage: Stage, mutt: Any, tmp_path: Path, audited: tuple[datetime, datetime], against: str
) -> None:
    ran = backtest(mutt, candidate(stage, tmp_path), audited, "--json", "--against", against)
    assert ran.code == 0, ran.err
    lines = [orjson.loads(line) for line in ran.out.splitlines()]
    assert lines[0]["summary"] == {
        "events": 11,
        "unchanged": 1,
        "new_alert": 4,
        "lost_alert": 1,
        "handling": 3,
        "team": 2,
        "rule": 0,
    }
    groups = {(g["kind"], g["after"]["team"]): g for g in lines[1:]}
    fans = groups[("new_alert", "Facilities")]
    assert fans["count"] == 2 and fans["before"]["rule_id"] is None
    assert fans["after"]["rule_id"] == -4  # the 4th rule of the file, without an id
    assert groups[("new_alert", "NETO")]["before"]["handling"] == "Ignore"
    lost = groups[("lost_alert", None)]
    assert lost["before"]["rule_id"] == stage.rules[r"ADJCHANGE: neighbor \S+ Down"]
    assert "ADJCHANGE" in lost["samples"][0]
    assert groups[("handling", "Storage")]["after"]["handling"] == "Page_only"


def test_backtest_text_report(
    stage: Stage, mutt: Any, tmp_path: Path, audited: tuple[datetime, datetime]
) -> None:
    ran = backtest(mutt, candidate(stage, tmp_path), audited)
    assert ran.code == 0, ran.err
    assert "11 audited events" in ran.out
    assert "NEW ALERTS" in ran.out and "new rule #4: Ticket_only Facilities" in ran.out
    assert "LOST ALERTS" in ran.out and "HANDLING CHANGES" in ran.out


def test_backtest_refuses_an_invalid_file(stage: Stage, mutt: Any, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"rules": [{"match_type": "regex", "match_string": "(x"}]}))
    ran = mutt("rules", "backtest", str(path), "--since", "1h")
    assert ran.code != 0 and "nothing was changed" in ran.err
