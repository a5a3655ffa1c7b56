"""Silences: matching, one-off and recurring windows, the alert stage, and the CLI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pg8000.native
import pytest
from pydantic import ValidationError

from functions.alert.correlation.silences import Silence, SilenceBook, load_silences, save_silence
from tests.alert.correlation.conftest import Stage, alerts, link, records

NOW = datetime(2025, 6, 7, 12, 0, tzinfo=UTC)  # a Saturday


def silence(**fields: Any) -> Silence:
    base: dict[str, Any] = {
        "id": "s-test",
        "start": NOW - timedelta(hours=1),
        "end": NOW + timedelta(hours=1),
        "reason": "CHG-1",
        "created_by": "alice",
        "created_at": NOW,
    }
    return Silence.model_validate(base | fields)


@pytest.mark.parametrize(
    ("fields", "host", "team", "rule", "hit"),
    [
        ({"host": "core-rtr-*"}, "core-rtr-07.dc1", "NetOps", 1, True),
        ({"host": "core-rtr-*"}, "edge-rtr-07", "NetOps", 1, False),
        ({"host": "CORE-RTR-0?"}, "core-rtr-07", "NetOps", 1, True),
        ({"team": "netops"}, "x", "NetOps", 1, True),
        ({"rule": 7}, "x", "NetOps", 7, True),
        ({"rule": 7}, "x", "NetOps", 8, False),
        ({"rule": "unhandled"}, "x", "NETO", "unhandled", True),
        ({"host": "core-*", "team": "Storage"}, "core-1", "NetOps", 1, False),
    ],
)
def test_matching(fields: dict[str, Any], host: str, team: str, rule: Any, hit: bool) -> None:
    assert silence(**fields).matches(host, team, rule) is hit


def test_one_off_window() -> None:
    s = silence(host="*")
    assert s.state_at(NOW) == (True, NOW + timedelta(hours=1))
    assert s.state_at(NOW - timedelta(hours=2)) == (False, NOW - timedelta(hours=1))
    assert s.state_at(NOW + timedelta(hours=1)) == (False, None)


def test_recurring_window_in_its_time_zone() -> None:
    # Saturdays 13:00-15:00 Paris time (11:00-13:00 UTC in June)
    s = silence(
        host="*",
        end=None,
        cron="0 13 * * 6",
        duration_seconds=7200,
        timezone="Europe/Paris",
        start=NOW - timedelta(days=30),
    )
    on, until = s.state_at(NOW)
    assert on and until == datetime(2025, 6, 7, 13, 0, tzinfo=UTC)
    assert s.state_at(datetime(2025, 6, 7, 11, 0, tzinfo=UTC))[0]  # opens exactly on time
    off, next_start = s.state_at(datetime(2025, 6, 7, 13, 0, tzinfo=UTC))
    assert not off and next_start == datetime(2025, 6, 14, 11, 0, tzinfo=UTC)


def test_book_caches_until_the_next_change() -> None:
    book = SilenceBook(
        [
            silence(host="a*"),
            silence(
                id="s-2", host="b*", start=NOW + timedelta(hours=2), end=NOW + timedelta(hours=3)
            ),
        ]
    )
    assert [s.id for s in book.active(NOW)] == ["s-test"]
    assert [s.id for s in book.active(NOW + timedelta(hours=2, minutes=1))] == ["s-2"]


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({}, "at least one of host, team or rule"),
        ({"host": "x", "end": None}, "needs an end"),
        ({"host": "x", "cron": "0 2 * * *"}, "needs duration_seconds"),
        ({"host": "x", "cron": "0 2 * * * *", "duration_seconds": 60}, "5-field cron"),
        ({"host": "x", "timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"host": "x", "end": NOW - timedelta(hours=2)}, "end must be after start"),
    ],
)
def test_invalid_silences_are_refused(fields: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        silence(**fields)


def test_silenced_alerts_are_audited_not_delivered(stage: Stage) -> None:
    now = datetime.fromtimestamp(stage.clock.now, UTC)
    save_silence(
        stage.r,
        stage.keys,
        silence(id="s-maint", host="core-*", start=now, end=now + timedelta(hours=1)),
    )
    outcomes = stage.send("disk failed", "disk failed")
    assert alerts(outcomes) == []
    (record, _) = records(outcomes)
    assert record["correlation"] == "silenced:s-maint"
    assert record["forwarded"] is False
    assert record["alert_id"] is not None  # the alert it would have been
    assert len(alerts(stage.send("disk failed", host="edge-1"))) == 1
    stage.clock.advance(3601)
    assert len(alerts(stage.send("disk failed"))) == 1


def test_resolves_are_not_silenced(stage: Stage) -> None:
    stage.pair_links()
    (down,) = alerts(stage.send(link("down")))
    now = datetime.fromtimestamp(stage.clock.now, UTC)
    save_silence(stage.r, stage.keys, silence(host="*", start=now, end=now + timedelta(hours=1)))
    (resolve,) = alerts(stage.send(link("up")))
    assert resolve.action == "resolve" and resolve.dedup_key == down.dedup_key


def test_silences_apply_to_unhandled_meta_alerts(stage: Stage) -> None:
    stage.set(unhandled_threshold=1, audit_unhandled=1)
    now = datetime.fromtimestamp(stage.clock.now, UTC)
    save_silence(
        stage.r, stage.keys, silence(rule="unhandled", start=now, end=now + timedelta(hours=1))
    )
    outcomes = stage.send("something nobody wrote a rule for")
    assert alerts(outcomes) == []
    (record,) = records(outcomes)
    assert record["handling_decision"] == "Unhandled"
    assert record["correlation"].startswith("silenced:")


def test_cli_add_list_remove_is_audited(
    stage: Stage, mutt: Any, pg: pg8000.native.Connection
) -> None:
    ran = mutt(
        "silence",
        "add",
        "--host",
        "core-rtr-*",
        "--duration",
        "2h",
        "--reason",
        "CHG-1234 IOS upgrade",
        "--by",
        "alice",
    )
    assert ran.code == 0, ran.err
    silence_id = ran.out.split(":")[0]
    (stored,) = load_silences(stage.r, stage.keys)
    assert stored.id == silence_id and stored.host == "core-rtr-*"
    assert stored.end is not None and stored.end - stored.start == timedelta(hours=2)

    ran = mutt(
        "silence",
        "add",
        "--team",
        "Storage",
        "--cron",
        "0 2 * * 6",
        "--duration",
        "3h",
        "--tz",
        "Europe/Paris",
        "--reason",
        "weekly backups",
    )
    assert ran.code == 0, ran.err

    listing = mutt("silence", "list")
    assert silence_id in listing.out and "active" in listing.out and "pending" in listing.out

    assert mutt("silence", "remove", silence_id, "--reason", "done early", "--by", "bob").code == 0
    assert silence_id not in mutt("silence", "list").out
    rows = pg.run(
        "SELECT operation, changed_by, reason FROM config_audit_log"
        " WHERE table_name = 'silences' AND record_id = :id ORDER BY id",
        id=silence_id,
    )
    assert rows == [["CREATE", "alice", "CHG-1234 IOS upgrade"], ["DELETE", "bob", "done early"]]


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--duration", "1h"], "say what to silence"),
        (["--host", "x"], "needs an end"),
        (["--host", "x", "--cron", "0 2 * * *"], "--cron needs --duration"),
        (["--host", "x", "--end", "2h"], "expected now or an ISO time"),
        (["--host", "x", "--duration", "1h", "--end", "2099-01-01"], "not both"),
        (["--host", "x", "--cron", "61 * * * *", "--duration", "1h"], "5-field cron"),
    ],
)
def test_cli_refuses_bad_silences(stage: Stage, mutt: Any, argv: list[str], problem: str) -> None:
    ran = mutt("silence", "add", *argv, "--reason", "r")
    assert ran.code != 0 and problem in ran.err, ran.err
    assert load_silences(stage.r, stage.keys) == []


def test_cli_remove_unknown_changes_nothing(stage: Stage, mutt: Any) -> None:
    ran = mutt("silence", "remove", "s-nope", "--reason", "r")
    assert ran.code != 0 and "no silence s-nope" in ran.err
