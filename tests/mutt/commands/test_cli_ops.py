"""Operator commands against real Redis and PostgreSQL: config, audit, status, dlq, help.

Each command is run through the real parser and error handling (in-process
for speed, as a child process where the exit line matters).
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pg8000.native
import pytest
import redis

from functions.alert.cache import bump_version
from functions.forward.delivery import EXT_ATTEMPT, EXT_SINKS
from mutt.cli import build_parser
from shared.broker.keys import Keys, schedule_keys
from shared.broker.streams import Entry, dead_letter_fields, ensure_group
from shared.config import Settings
from shared.dynconfig import KNOBS, DynamicConfig
from shared.envelope import decode, encode
from tests.support.cli import Cli, as_process, in_process
from tests.support.factories import accepted_event, alert_event

OPERATOR_GROUPS = ("rules", "config", "audit", "status", "dlq")


@pytest.fixture
def cli(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Cli:
    return in_process(settings, monkeypatch, capsys)


@pytest.fixture
def who(pg: pg8000.native.Connection) -> Iterator[str]:
    name = f"tester-{uuid.uuid4().hex[:8]}"
    yield name
    pg.run("DELETE FROM config_audit_log WHERE changed_by = :by", by=name)


# ---------------------------------------------------------------- config


def test_config_set_validates_audits_and_reaches_running_readers(
    settings: Settings, r: redis.Redis, keys: Keys, pg: pg8000.native.Connection, who: str, cli: Cli
) -> None:
    reader = DynamicConfig(r, keys.config, refresh_seconds=0.3)
    assert reader.get("forward_rate_limit") == KNOBS["forward_rate_limit"].default

    bad = as_process(settings, "config", "set", "forward_rate_limit", "-5", "--reason", "x")
    assert bad.code == 1 and "Traceback" not in bad.err
    assert bad.err_lines == [
        "mutt: forward_rate_limit: -5 is outside 0..1000000; nothing was changed"
    ]
    unknown = cli("config", "set", "forward_rate_limt", "5", "--reason", "x", "--by", who)
    assert unknown.code == 1
    assert unknown.err_lines[0].startswith("mutt: unknown setting 'forward_rate_limt'; known: ")
    assert not r.hexists(keys.config, "forward_rate_limit")

    stale = DynamicConfig(r, keys.config, refresh_seconds=3600)
    assert stale.get("forward_rate_limit") == 100  # its snapshot, kept for an hour
    ok = cli(
        "config", "set", "forward_rate_limit", "250", "--reason", "INC-7 throttled", "--by", who
    )
    assert ok.code == 0, ok.err
    assert ok.out.startswith("forward_rate_limit: 100 → 250")
    # The running reader sees the change at its next refresh (0.3 s), without a restart;
    # the deadline only stops a hung test.
    deadline = time.monotonic() + 60
    while reader.get("forward_rate_limit") != 250:
        assert time.monotonic() < deadline, "the reader never saw the change"
        time.sleep(0.02)
    assert stale.get("forward_rate_limit") == 100  # a snapshot serves until its refresh

    again = cli("config", "set", "forward_rate_limit", "300", "--reason", "more", "--by", who)
    assert again.code == 0
    rows = pg.run(
        "SELECT operation, table_name, record_id, old_values, new_values, reason"
        " FROM config_audit_log WHERE changed_by = :by ORDER BY id",
        by=who,
    )
    assert rows == [
        [
            "CREATE",
            "dynamic_config",
            "forward_rate_limit",
            {"value": 100, "source": "default"},
            {"value": 250},
            "INC-7 throttled",
        ],
        [
            "UPDATE",
            "dynamic_config",
            "forward_rate_limit",
            {"value": 250, "source": "set"},
            {"value": 300},
            "more",
        ],
    ]

    assert cli("config", "get", "forward_rate_limit").out == "300\n"
    listed = [orjson.loads(x) for x in cli("config", "list", "--json").out.splitlines()]
    entry = next(x for x in listed if x["key"] == "forward_rate_limit")
    assert entry == {**entry, "value": 300, "default": 100, "source": "set"}
    assert len(listed) == len(KNOBS)
    audit = cli("audit", "config", "--by", who, "--table", "dynamic_config")
    assert "value 250 → 300" in audit.out


# ---------------------------------------------------------------- audit


@pytest.fixture
def audit_events(pg: pg8000.native.Connection) -> Iterator[dict[str, object]]:
    """Five audit rows at known times on hosts private to this test."""
    tag = uuid.uuid4().hex[:6]
    now = datetime.now(UTC)
    rows = [
        (f"a-{tag}", 1, now - timedelta(minutes=5), "first"),
        (f"a-{tag}", 2, now - timedelta(hours=2), "second"),
        (f"b-{tag}", 1, now - timedelta(hours=3), "third"),
        (f"a-{tag}", 1, now - timedelta(days=3), "old"),
        (f"b-{tag}", 2, now - timedelta(days=40), "older"),
    ]
    ids = []
    for host, rule, when, message in rows:
        event_id = str(uuid.uuid4())
        ids.append(event_id)
        pg.run(
            "INSERT INTO event_audit_log (event_id, event_time, received_at, hostname,"
            " matched_rule_id, handling_decision, environment, team, severity, forwarded, event)"
            " VALUES (CAST(:id AS uuid), :t, :t, :h, :rule, 'Page_only', 'prod', 'NetOps', 3,"
            " true, CAST(:ev AS jsonb))",
            id=event_id,
            t=when,
            h=host,
            rule=rule,
            ev=orjson.dumps({"message": message}).decode(),
        )
    yield {"tag": tag, "now": now}
    pg.run("DELETE FROM event_audit_log WHERE event_id = ANY(CAST(:ids AS uuid[]))", ids=ids)


def _messages(ran_out: str) -> list[str]:
    return [orjson.loads(line)["event"]["message"] for line in ran_out.splitlines()]


def test_audit_events_filters(audit_events: dict[str, object], cli: Cli) -> None:
    tag = audit_events["tag"]
    host_a, host_b = f"a-{tag}", f"b-{tag}"
    ran = cli("audit", "events", "--host", host_a.upper(), "--json")
    assert ran.code == 0, ran.err
    assert _messages(ran.out) == ["first", "second"]  # default: last 24 h, newest first
    assert _messages(cli("audit", "events", "--host", host_a, "--since", "7d", "--json").out) == [
        "first",
        "second",
        "old",
    ]
    assert _messages(
        cli("audit", "events", "--host", host_b, "--rule", "2", "--since", "60d", "--json").out
    ) == ["older"]
    now = audit_events["now"]
    assert isinstance(now, datetime)
    window = [
        "--since",
        (now - timedelta(hours=4)).isoformat(),
        "--until",
        (now - timedelta(hours=1)).isoformat(),
    ]
    both = [*_messages(cli("audit", "events", "--host", host_a, *window, "--json").out)]
    both += _messages(cli("audit", "events", "--host", host_b, *window, "--json").out)
    assert both == ["second", "third"]
    limited = cli("audit", "events", "--host", host_a, "--since", "7d", "--limit", "1", "--json")
    assert _messages(limited.out) == ["first"]
    assert "showing the newest" not in limited.err  # --json keeps stderr quiet too

    table = cli("audit", "events", "--host", host_a, "--since", "7d")
    lines = table.out.splitlines()
    assert lines[0].split() == [
        "EVENT",
        "TIME",
        "HOST",
        "RULE",
        "HANDLING",
        "ENV",
        "TEAM",
        "SEV",
        "FWD",
        "MESSAGE",
    ]
    assert len(lines) == 4
    column = lines[0].index("HOST")
    assert all(line[column:].startswith(host_a) for line in lines[1:])

    bad = cli("audit", "events", "--since", "yesterday")
    assert bad.code == 1
    assert bad.err_lines[0].startswith("mutt: --since 'yesterday': expected a duration")


# ---------------------------------------------------------------- status


def test_status_reports_backlog_dlq_breakers_rules_and_partitions(
    settings: Settings,
    demo_rules: None,
    r: redis.Redis,
    keys: Keys,
    pg: pg8000.native.Connection,
    cli: Cli,
) -> None:
    def server_ms() -> int:  # status reads the time from Redis, so the test does too
        seconds, micros = r.time()
        return int(seconds) * 1000 + int(micros) // 1000

    ensure_group(r, keys.events, "alert")
    setup_ms = server_ms()
    for i in range(5):
        r.xadd(keys.events, {b"ce": encode(accepted_event(i))})
    r.xreadgroup("alert", "c1", {keys.events: ">"}, count=2)  # 2 pending, 3 not yet read
    zset, _ = schedule_keys(keys.alerts)
    due = server_ms() + 60_000
    r.zadd(zset, {"m1": due, "m2": due + 1000})
    for i in range(3):
        r.xadd(keys.dlq("forward"), {b"ce": encode(alert_event(i)), b"dlq_reason": b"boom"})
    now_ms = server_ms()
    r.hset(
        f"{keys.base}:breaker:pagerduty",
        mapping={"state": "open", "failures": 5, "opened_at": now_ms - 10_000},
    )
    r.hset(f"{keys.base}:breaker:webhook", mapping={"state": "closed", "failures": 0})
    version = bump_version(r, settings.namespace)
    in_default = int(pg.run("SELECT count(*) FROM event_audit_log_default")[0][0])

    ran = cli("status", "--json")
    # Ages are checked against the time this test took, however long that was.
    took = (server_ms() - setup_ms) / 1000
    assert ran.code == 0, ran.err
    doc = orjson.loads(ran.out)
    streams = {s["name"]: s for s in doc["streams"]}
    assert list(streams) == [
        "events",
        "alerts",
        "audit",
        "delivered",
        "dlq:alert",
        "dlq:forward",
        "dlq:audit",
    ]
    events = streams["events"]
    assert events["length"] == 5
    (group,) = events["groups"]
    assert (group["name"], group["pending"], group["lag"], group["consumers"]) == ("alert", 2, 3, 1)
    assert 0 <= group["oldest_pending_age_seconds"] <= took
    assert streams["alerts"]["parked"] == 2
    assert 60 - took <= streams["alerts"]["next_parked_due_seconds"] <= 60
    assert doc["dlq"] == {"alert": 0, "forward": 3, "audit": 0}
    breakers = {b["sink"]: b for b in doc["breakers"]}
    assert breakers["pagerduty"]["state"] == "open" and breakers["pagerduty"]["failures"] == 5
    assert 10 <= breakers["pagerduty"]["opened_seconds_ago"] <= 10 + took
    assert breakers["webhook"]["state"] == "closed"
    assert doc["rules"] == {"version": version, "count": 7, "active": 7}
    assert doc["audit"]["months_ahead"] >= 3
    assert doc["audit"]["default_rows"] == in_default
    assert any("dlq:forward" in note for note in doc["attention"])
    assert any("pagerduty is open" in note for note in doc["attention"])

    text = cli("status", "--check")
    assert text.code == 1  # something needs attention
    row = next(line for line in text.out.splitlines() if line.startswith("events "))
    assert row.split()[:7] == ["events", "5", "0", "alert", "1", "2", "3"]
    header = next(line for line in text.out.splitlines() if line.startswith("STREAM"))
    assert header.split() == [
        "STREAM",
        "LENGTH",
        "PARKED",
        "GROUP",
        "CONSUMERS",
        "PENDING",
        "LAG",
        "OLDEST",
    ]
    assert "rules: version" in text.out and "7 rules (7 active)" in text.out


# ---------------------------------------------------------------- dlq


_next_ms = [int(time.time() * 1000) - 60_000]


def _dead(r: redis.Redis, keys: Keys, stage: str, ce: bytes, reason: str) -> str:
    """A dead letter with an id no other stage's DLQ has (ids are per stream)."""
    fields = dead_letter_fields(
        Entry("1-1", {b"ce": ce}, 3), stage=stage, origin=keys.alerts, reason=reason
    )
    _next_ms[0] += 1
    plain: dict[Any, Any] = dict(fields)
    new_id: Any = r.xadd(keys.dlq(stage), plain, id=f"{_next_ms[0]}-0")
    return str(new_id.decode())


def _entries(r: redis.Redis, stream: str) -> list[tuple[bytes, dict[bytes, bytes]]]:
    rows: Any = r.xrange(stream)
    return [(entry_id, fields) for entry_id, fields in rows]


def _forward_letter(i: int) -> bytes:
    ce = alert_event(i)
    ce[EXT_SINKS] = "pagerduty"
    ce[EXT_ATTEMPT] = "10"
    return encode(ce)


def test_dlq_list_show_replay_purge_round_trip(r: redis.Redis, keys: Keys, cli: Cli) -> None:
    fwd = [
        _dead(
            r,
            keys,
            "forward",
            _forward_letter(i),
            f"gave up after 10 attempts at pagerduty: 503 #{i}",
        )
        for i in range(3)
    ]
    perm = _dead(r, keys, "forward", _forward_letter(9), "permanent failure at pagerduty: 400")
    alert_id = _dead(r, keys, "alert", encode(accepted_event(7)), "handler error")
    junk = _dead(r, keys, "alert", b"not json", "undecodable entry")

    listed = [orjson.loads(x) for x in cli("dlq", "list", "--json").out.splitlines()]
    assert [x["id"] for x in listed] == sorted([*fwd, perm, alert_id, junk], reverse=True)
    only = cli("dlq", "list", "--stage", "forward", "--reason-contains", "PERMANENT", "--json")
    assert [orjson.loads(x)["id"] for x in only.out.splitlines()] == [perm]
    table = cli("dlq", "list")
    assert table.out.splitlines()[0].split() == [
        "ID",
        "STAGE",
        "FAILED",
        "AT",
        "TRIES",
        "SUBJECT",
        "REASON",
    ]
    assert "dead letters: forward 4, alert 2, audit 0" in table.out

    shown = cli("dlq", "show", fwd[0])
    assert "reason:     gave up after 10 attempts at pagerduty: 503 #0" in shown.out
    assert '"muttsinks": "pagerduty"' in shown.out
    assert cli("dlq", "show", "1-0").err_lines == ["mutt: no dead letter 1-0 (see `mutt dlq list`)"]

    refused = cli("dlq", "replay")
    assert refused.code == 1 and "say which entries" in refused.err
    dry = cli("dlq", "replay", "--stage", "forward", "--reason-contains", "gave up", "--dry-run")
    assert dry.out.strip() == "would replay 3 entries"
    assert r.xlen(keys.dlq("forward")) == 4 and r.xlen(keys.alerts) == 0

    done = cli("dlq", "replay", "--stage", "forward", "--reason-contains", "gave up")
    assert done.out.strip() == "replayed 3 entries"
    assert r.xlen(keys.dlq("forward")) == 1
    replayed = [decode(fields[b"ce"]) for _, fields in _entries(r, keys.alerts)]
    assert len(replayed) == 3
    assert all(ce.get(EXT_SINKS) == "pagerduty" and ce.get(EXT_ATTEMPT) is None for ce in replayed)
    assert all(set(fields) == {b"ce"} for _, fields in _entries(r, keys.alerts))

    r.xadd(keys.dlq("audit"), {b"ce": b"{}", b"dlq_reason": b"twin"}, id=perm)
    twin = cli("dlq", "replay", "--ids", perm)
    assert twin.err_lines == [
        f"mutt: entry {perm} is in more than one DLQ (forward, audit); add --stage"
    ]
    assert cli("dlq", "purge", "--stage", "audit", "--ids", perm, "--yes").code == 0
    assert r.xlen(keys.dlq("forward")) == 1

    by_id = cli("dlq", "replay", "--stage", "alert", "--ids", alert_id, junk)
    assert by_id.out.strip() == (
        "replayed 1 entries; 1 without a usable CloudEvent left in the DLQ (purge them)"
    )
    (entry,) = _entries(r, keys.events)
    assert decode(entry[1][b"ce"]).data["message"] == "message 7"

    no_yes = cli("dlq", "purge", "--all")
    assert no_yes.code == 1 and "add --yes" in no_yes.err
    assert (
        cli("dlq", "purge", "--older-than", "1h", "--yes").out.strip() == "deleted 0 dead letters"
    )
    assert cli("dlq", "purge", "--ids", junk, "--yes").out.strip() == "deleted 1 dead letters"
    assert cli("dlq", "purge", "--all", "--yes").out.strip() == "deleted 1 dead letters"
    assert sum(r.xlen(keys.dlq(s)) for s in ("forward", "alert", "audit")) == 0


def test_dlq_replay_reports_progress_and_older_than_purges_by_age(
    r: redis.Redis, keys: Keys, cli: Cli
) -> None:
    body = encode(accepted_event(1))
    pipe = r.pipeline(transaction=False)
    old_ms = int(time.time() * 1000) - 3 * 86_400_000
    for i in range(1200):
        fields: dict[Any, Any] = {b"ce": body, b"dlq_reason": b"x"}
        pipe.xadd(keys.dlq("audit"), fields, id=f"{old_ms}-{i}" if i < 200 else "*")
    pipe.execute()
    assert cli("dlq", "purge", "--stage", "audit", "--older-than", "2d", "--yes").out.strip() == (
        "deleted 200 dead letters"
    )
    ran = cli("dlq", "replay", "--stage", "audit", "--all")
    assert ran.out.strip() == "replayed 1000 entries"
    assert "replay: 1000 entries processed (1000 replayed)" in ran.err
    assert r.xlen(keys.audit) == 1000 and r.xlen(keys.dlq("audit")) == 0


# ---------------------------------------------------------------- help and errors


def _actions(
    parser: argparse.ArgumentParser,
) -> Iterator[tuple[list[str], argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield [name], sub
                for path, leaf in _actions(sub):
                    yield [name, *path], leaf


def test_every_operator_command_has_help_with_examples() -> None:
    parser = build_parser()
    seen = set()
    for path, sub in _actions(parser):
        if path[0] not in OPERATOR_GROUPS:
            continue
        seen.add(" ".join(path))
        text = sub.format_help()
        assert "example" in text, f"mutt {' '.join(path)} --help has no example"
        assert f"mutt {path[0]}" in text
    assert {
        "rules apply",
        "rules export",
        "config set",
        "audit events",
        "status",
        "dlq replay",
        "dlq purge",
    } <= seen


def test_operator_commands_need_the_server_urls(settings: Settings) -> None:
    env_settings = settings.model_copy(update={"redis_url": None})
    ran = as_process(env_settings, "status")
    assert ran.code == 2
    assert ran.err_lines == [
        f"mutt: no MUTT_REDIS_URL, and no `mutt run` found in {settings.data_dir.resolve()}:"
        " start `mutt run` there, pass the --data-dir it uses,"
        " or set MUTT_REDIS_URL and MUTT_DATABASE_URL"
    ]


def test_a_run_that_is_gone_is_named(settings: Settings) -> None:
    from mutt import runfile

    dead_pid = 2**22 + 12345  # above the largest pid Linux hands out: no such process
    runfile.write(settings.data_dir, runfile.RunInfo(dead_pid, "http://127.0.0.1:1"))
    ran = as_process(settings.model_copy(update={"redis_url": None}), "rules", "list")
    assert ran.code == 2
    assert ran.err_lines == [
        f"mutt: the `mutt run` that used {settings.data_dir.resolve()} (pid {dead_pid}) is gone:"
        " start `mutt run` there, pass the --data-dir it uses,"
        " or set MUTT_REDIS_URL and MUTT_DATABASE_URL"
    ]


def test_status_shows_the_most_frequent_unhandled_events(
    cli: Cli, settings: Settings, r: redis.Redis
) -> None:
    from functions.alert.unhandled import UnhandledCounter
    from shared.models import Event

    counter = UnhandledCounter(r, settings.namespace)
    events = [
        Event.model_validate(accepted_event(i, f"temp sensor {i} high", hostname="ups-3").data)
        for i in range(4)
    ]
    counter.count(events, 1_000_000, 86_400, 100)
    ran = cli("status", "--json")
    top = orjson.loads(ran.out)["unhandled"]["top"]
    assert [(t["count"], t["hostname"], t["message"]) for t in top] == [
        (4, "ups-3", "temp sensor 0 high")
    ]
    text = cli("status").out
    assert "unhandled events, most frequent this" in text
    assert "why: mutt rules test --host ups-3 --message 'temp sensor 0 high'" in text
