"""The alert stage end to end against real PostgreSQL and Redis: rules from the
database, decisions per environment, audit records, unhandled meta-alerts,
hot reload, and serving the last good rules when PostgreSQL is away."""

from __future__ import annotations

import threading
import time
from typing import Any

import pg8000.native
import pytest
import redis

from functions.alert.build import make_alert_handler
from functions.alert.cache import RuleCache
from functions.alert.catalog import insert_catalog, parse_catalog
from functions.alert.handler import AlertHandler
from functions.alert.unhandled import UnhandledCounter
from functions.audit.writer import AuditWriter
from shared.broker.keys import Keys
from shared.context import Context
from shared.db.connection import connect_pg
from shared.dynconfig import DynamicConfig
from tests.support.factories import accepted_event

RULES: dict[str, Any] = {
    "rules": [
        {
            "match_type": "contains",
            "match_string": "LINK-3-UPDOWN",
            "priority": 10,
            "prod_handling": "Page_and_ticket",
            "dev_handling": "Ticket_only",
            "team_assignment": "NetOps",
        },
        {
            "match_type": "oid_prefix",
            "trap_oid": ".1.3.6.1.4.1.9",
            "priority": 20,
            "prod_handling": "Page_only",
            "dev_handling": "Ignore",
            "team_assignment": "Cisco",
        },
        {
            "match_type": "regex",
            "match_string": r"disk \d+ failed",
            "syslog_severity": "critical",
            "priority": 30,
            "prod_handling": "Ticket_only",
            "dev_handling": "Ticket_only",
            "team_assignment": "Storage",
        },
        {
            "match_type": "contains",
            "match_string": "heartbeat",
            "priority": 40,
            "prod_handling": "Ignore",
            "dev_handling": "Ignore",
            "team_assignment": "NETO",
        },
    ],
    "development_hosts": ["lab-rtr1", "test-sw.example.com"],
    "device_teams": {"edge-1": "EdgeTeam"},
}


@pytest.fixture
def rules(ctx: Context, pg: pg8000.native.Connection, r: redis.Redis) -> Any:
    insert_catalog(pg, r, ctx.settings.namespace, parse_catalog(RULES))
    yield
    pg.run("DELETE FROM alert_rules; DELETE FROM development_hosts; DELETE FROM device_teams")


def decide(
    handler: AlertHandler, message: str, hostname: str = "core-1", **extra: object
) -> dict[str, Any]:
    (outcome,) = handler.handle(
        [accepted_event(hash((message, hostname)) % 10**9, message, hostname=hostname, **extra)]
    )
    assert outcome.status == "ok"
    found: dict[str, Any] = {"alert": None, "audit": None}
    for reply in outcome.replies:
        found["alert" if reply["type"] == "io.mutt.alert.raised.v1" else "audit"] = reply.data
    return found


@pytest.mark.usefixtures("rules")
@pytest.mark.parametrize(
    ("message", "hostname", "extra", "handling", "team", "environment"),
    [
        ("%LINK-3-UPDOWN: Gi0/1 down", "core-1", {}, "Page_and_ticket", "NetOps", "prod"),
        ("%link-3-updown: gi0/1 down", "core-1", {}, "Page_and_ticket", "NetOps", "prod"),  # case
        (
            "%LINK-3-UPDOWN: Gi0/1 down",
            "LAB-RTR1.dc.example.com",
            {},
            "Ticket_only",
            "NetOps",
            "dev",
        ),
        (
            "%LINK-3-UPDOWN: Gi0/1 down",
            "test-sw",
            {},
            "Ticket_only",
            "NetOps",
            "dev",
        ),  # FQDN listed
        ("trap", "core-1", {"trap_oid": "1.3.6.1.4.1.9.9.41.2"}, "Page_only", "Cisco", "prod"),
        ("trap", "core-1", {"trap_oid": "1.3.6.1.4.1.99.1"}, None, None, None),  # not an arc prefix
        ("trap", "lab-rtr1", {"trap_oid": "1.3.6.1.4.1.9.1"}, "Ignore", "Cisco", "dev"),
        (
            "disk 12 failed",
            "san-1",
            {"severity": 2, "severity_name": "critical"},
            "Ticket_only",
            "Storage",
            "prod",
        ),
        ("disk 12 failed", "san-1", {"severity": 4, "severity_name": "warning"}, None, None, None),
        ("heartbeat ok", "core-1", {}, "Ignore", "NETO", "prod"),
    ],
)
def test_decisions(
    ctx: Context,
    message: str,
    hostname: str,
    extra: dict[str, object],
    handling: str | None,
    team: str | None,
    environment: str | None,
) -> None:
    found = decide(make_alert_handler(ctx), message, hostname, **extra)
    if handling is None:
        assert found == {"alert": None, "audit": None}  # unhandled: counted, not audited
        return
    audit = found["audit"]
    assert (audit["handling_decision"], audit["team"], audit["environment"]) == (
        handling,
        team,
        environment,
    )
    if handling == "Ignore":
        assert found["alert"] is None
        assert audit["forwarded"] is False
    else:
        alert = found["alert"]
        assert (alert["handling"], alert["team"], alert["environment"]) == (
            handling,
            team,
            environment,
        )
        assert audit["alert_id"] == alert["alert_id"]


@pytest.mark.usefixtures("rules")
def test_alert_ids_and_severity_are_carried(ctx: Context) -> None:
    handler = make_alert_handler(ctx)
    ce = accepted_event(
        7, "%LINK-3-UPDOWN: Gi0/2 down", hostname="core-2", severity=3, severity_name="error"
    )
    first = next(
        r.data for r in handler.handle([ce])[0].replies if r["type"] == "io.mutt.alert.raised.v1"
    )
    again = next(
        r.data for r in handler.handle([ce])[0].replies if r["type"] == "io.mutt.alert.raised.v1"
    )
    assert first["alert_id"] == again["alert_id"]  # deterministic: a redelivery is the same alert
    assert first["dedup_key"] == again["dedup_key"] == f"mutt:{first['rule_id']}:core-2"
    assert (first["severity"], first["severity_name"]) == (3, "error")  # not always "Warning"


@pytest.mark.usefixtures("rules")
def test_audit_is_one_row_per_event_even_when_redelivered(
    ctx: Context, pg: pg8000.native.Connection
) -> None:
    handler = make_alert_handler(ctx)
    events = [accepted_event(100 + i, "%LINK-3-UPDOWN: x") for i in range(20)]
    records = [
        r
        for o in handler.handle(events)
        for r in o.replies
        if r["type"] == "io.mutt.audit.recorded.v1"
    ]
    writer = AuditWriter(
        lambda: connect_pg(ctx.settings.database_url or "", ctx.settings.database_schema)
    )
    assert all(o.status == "ok" for o in writer.handle(records))
    assert all(o.status == "ok" for o in writer.handle(records))  # redelivered batch
    ids = [str(r.data["event_id"]) for r in records]
    count = pg.run(
        "SELECT count(*) FROM event_audit_log WHERE event_id = ANY(CAST(:ids AS uuid[]))", ids=ids
    )
    assert count[0][0] == 20


@pytest.mark.usefixtures("rules")
def test_unhandled_events_raise_one_meta_alert_for_the_hosts_team(
    ctx: Context, r: redis.Redis, keys: Keys
) -> None:
    DynamicConfig(r, keys.config).set("unhandled_threshold", "5")
    handler = make_alert_handler(ctx)
    events = [
        accepted_event(200 + i, f"port {i} flapping on Gi0/{i}", hostname="edge-1")
        for i in range(12)
    ]
    alerts = [
        r
        for o in handler.handle(events)
        for r in o.replies
        if r["type"] == "io.mutt.alert.raised.v1"
    ]
    assert len(alerts) == 1  # fires once at the threshold, then suppressed for the window
    meta = alerts[0].data
    assert meta["rule_id"] == "unhandled"
    assert meta["team"] == "EdgeTeam"
    assert "5 unhandled messages" in meta["summary"]


def test_unhandled_memory_is_bounded_under_unique_floods(r: redis.Redis, keys: Keys) -> None:
    counter = UnhandledCounter(r, keys.namespace, "exact")
    events = [
        accepted_event(300 + i, f"unique {i} {'x' * (i % 7)}", hostname="noisy")
        for i in range(3000)
    ]
    from shared.models import Event

    counter.count([Event.model_validate(e.data) for e in events], 1_000_000, 3600, 100)
    (key,) = list(r.scan_iter(match=f"{keys.namespace}:{{unhandled}}:noisy:*"))
    assert r.hlen(key) <= 101  # 100 fingerprints + the overflow counter
    assert 0 < r.pttl(key) <= 3_600_000


def test_unhandled_counts_are_per_host_within_one_batch(r: redis.Redis, keys: Keys) -> None:
    """One script call per batch still counts each host on its own, in event order."""
    from shared.models import Event

    counter = UnhandledCounter(r, keys.namespace, "masked")

    def ev(i: int, host: str) -> Event:
        return Event.model_validate(accepted_event(900 + i, "link 7 down", hostname=host).data)

    batch = [ev(0, "a"), ev(1, "b"), ev(2, "a"), ev(3, "b"), ev(4, "a"), ev(5, "a")]
    fired = counter.count(batch, 3, 3600, 100)
    assert [f.count if f else 0 for f in fired] == [0, 0, 0, 0, 3, 0]  # a fires once, b not yet
    (again,) = counter.count([ev(6, "b")], 3, 3600, 100)
    assert again is not None and again.count == 3 and again.event.hostname == "b"
    assert len(list(r.scan_iter(match=f"{keys.namespace}:{{unhandled}}:*"))) == 2


def test_rule_changes_reach_running_instances(
    ctx: Context, pg: pg8000.native.Connection, r: redis.Redis
) -> None:
    """Both warm instances pick up a new rule without a restart.

    They check the rules version every 0.5 s (functions/alert/cache.py); how soon is
    not asserted here, the deadline below only stops a hung test.
    """
    handlers = [make_alert_handler(ctx) for _ in range(2)]  # two "instances"
    assert all(decide(h, "brand new pattern")["alert"] is None for h in handlers)
    insert_catalog(
        pg,
        r,
        ctx.settings.namespace,
        parse_catalog(
            {
                "rules": [
                    {
                        "match_type": "contains",
                        "match_string": "brand new",
                        "prod_handling": "Ticket_only",
                        "dev_handling": "Ticket_only",
                        "team_assignment": "T",
                    }
                ]
            }
        ),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not all(
        decide(h, "brand new pattern")["alert"] for h in handlers
    ):
        time.sleep(0.05)
    assert all(decide(h, "brand new pattern")["alert"] for h in handlers)
    pg.run("DELETE FROM alert_rules")


@pytest.mark.usefixtures("rules")
def test_last_good_rules_keep_serving_when_postgres_is_away(
    ctx: Context, r: redis.Redis, keys: Keys
) -> None:
    down = threading.Event()

    def connect() -> pg8000.native.Connection:
        if down.is_set():
            raise OSError("PostgreSQL is down")
        return connect_pg(ctx.settings.database_url or "", ctx.settings.database_schema)

    cache = RuleCache(connect, r, keys.namespace, check_seconds=0.0)
    cache.warm()
    handler = AlertHandler(
        cache, UnhandledCounter(r, keys.namespace), DynamicConfig(r, keys.config), "NETO"
    )
    down.set()
    r.incr(f"{keys.namespace}:rules:version")  # a change it cannot load
    found = decide(handler, "%LINK-3-UPDOWN: still routed")
    assert found["alert"]["team"] == "NetOps"
    assert cache.last_error and "PostgreSQL is down" in cache.last_error
    assert handler.readiness()["rules"].startswith("ok (degraded")


def test_cold_start_warms_before_the_first_event(
    ctx: Context, pg: pg8000.native.Connection, r: redis.Redis
) -> None:
    insert_catalog(pg, r, ctx.settings.namespace, parse_catalog(RULES))
    try:
        handler = make_alert_handler(ctx)  # warm=True: loaded here, not on the first event
        assert handler.cache._snapshot is not None
        assert handler.cache._snapshot.rules.stats.active == 4
    finally:
        pg.run("DELETE FROM alert_rules; DELETE FROM development_hosts; DELETE FROM device_teams")


def test_unhandled_events_are_logged_once_per_host_with_the_command_that_explains_them(
    ctx: Context, caplog: pytest.LogCaptureFixture
) -> None:
    handler = make_alert_handler(ctx)
    events = [
        accepted_event(400 + i, f"fan {i} spinning slowly", hostname="rack-9") for i in range(5)
    ]
    events.append(accepted_event(499, "psu fault", hostname="rack-10"))
    with caplog.at_level("INFO", logger="functions.alert.unhandled"):
        handler.handle(events)
        handler.handle([accepted_event(500, "fan 7 spinning slowly", hostname="rack-9")])
    lines = [r.getMessage() for r in caplog.records if r.name == "functions.alert.unhandled"]
    assert len(lines) == 2  # one per host, however many events
    assert lines[0].startswith("no rule matched an event from rack-9 (fan 0 spinning slowly)")
    assert "mutt rules test --host rack-9 --message 'fan 0 spinning slowly'" in lines[0]
    assert "rack-10" in lines[1]


def test_top_unhandled_counts_templates_over_hosts_and_stays_bounded(
    r: redis.Redis, keys: Keys
) -> None:
    from functions.alert.unhandled import top_unhandled
    from shared.models import Event

    counter = UnhandledCounter(r, keys.namespace, "masked")

    def ev(i: int, host: str, message: str) -> Event:
        return Event.model_validate(accepted_event(i, message, hostname=host).data)

    batch = [ev(i, "core-1", f"BGP peer 10.0.0.{i} reset") for i in range(7)]
    batch += [ev(10 + i, "core-2", "fan tray missing") for i in range(3)]
    counter.count(batch, 1_000_000, 3600, 100)
    counter.count([ev(20, "core-2", "fan tray missing")], 1_000_000, 3600, 100)
    top = top_unhandled(r, keys.namespace, 3600)
    assert [(t.count, t.hostname, t.message) for t in top] == [
        (7, "core-1", "BGP peer 10.0.0.0 reset"),  # masked: one template, the first sample
        (4, "core-2", "fan tray missing"),
    ]
    flood = [ev(100 + i, "noisy", f"unique {'x' * i}") for i in range(60)]
    counter.count(flood, 1_000_000, 3600, 50)
    kept = top_unhandled(r, keys.namespace, 3600, limit=1000)
    assert len(kept) == 50  # the rarest are dropped beyond the cap
    assert kept[0].count == 7  # the frequent ones stay
    assert all(t.message for t in kept)  # each kept fingerprint keeps its sample
