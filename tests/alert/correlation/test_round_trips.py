"""The correlation step's cost in Redis: one round trip per batch, none when idle."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.connection import Connection, UnixDomainSocketConnection

from functions.alert.correlation import Correlator
from functions.alert.rules import Rule
from shared.config import Settings
from shared.models import Alert, Handling, Severity, alert_id_for
from tests.alert.correlation.conftest import Stage, link
from tests.support.factories import event


class CountingConnection(Connection):
    """Counts what is sent: one ``send_packed_command`` per round trip (pipelines included)."""

    sent = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.sent += 1
        super().send_packed_command(command, check_health)  # type: ignore[no-untyped-call]


class CountingUnixConnection(UnixDomainSocketConnection):
    """The same count over a Unix socket (the embedded Redis of a fresh clone)."""

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.sent += 1
        super().send_packed_command(command, check_health)  # type: ignore[no-untyped-call]


@pytest.fixture
def counted(settings: Settings) -> Iterator[redis.Redis]:
    assert settings.redis_url
    unix = settings.redis_url.startswith("unix://")
    counting = CountingUnixConnection if unix else CountingConnection
    pool = redis.ConnectionPool.from_url(settings.redis_url, connection_class=counting)
    client = redis.Redis(connection_pool=pool)
    client.ping()
    yield client
    client.close()


def raised(rule: Rule, n: int, message: str) -> tuple[Alert, Any]:
    ev = event(n, message, hostname=f"h{n % 5}")
    return (
        Alert(
            alert_id=alert_id_for(ev.event_id, f"rule:{rule.id}"),
            event_id=ev.event_id,
            rule_id=rule.id,
            handling=Handling.TICKET_ONLY,
            team=rule.team_assignment,
            environment="prod",
            severity=Severity.ERROR,
            severity_name="error",
            summary=message,
            dedup_key=f"mutt:{rule.id}:{ev.hostname}",
            raised_at=ev.received_at,
            event=ev,
        ),
        ev,
    )


def test_one_round_trip_per_batch_whatever_its_size(
    stage: Stage, counted: redis.Redis, settings: Settings
) -> None:
    stage.pair_links()
    stage.set(alert_dedup_seconds=60, storm_host_per_minute=1000, storm_global_per_minute=10_000)
    correlator = Correlator(counted, settings.namespace, stage.dyn, "NETO", refresh_seconds=3600)
    snap = stage.handler.cache.current()
    rules = {r.id: r for r in snap.rules.rules}
    link_rule, disk_rule = (
        rules[stage.rules["changed state to down"]],
        rules[stage.rules["disk failed"]],
    )
    warm = correlator.begin()  # also reads the config and silences (then once a second)
    warm.trigger(raised(disk_rule, 0, "disk failed")[0])
    warm.run()  # and loads the script into a fresh Redis (NOSCRIPT, once per server)
    for size in (1, 100, 500):
        batch = correlator.begin()
        for n in range(size):
            rule, message = (link_rule, link("down")) if n % 3 else (disk_rule, "disk failed")
            alert, ev = raised(rule, n, message)
            batch.trigger(alert)
            for clear in batch.clears(event(10_000 + n, link("up"), hostname=ev.hostname)):
                batch.clear(clear, ev)
        before = CountingConnection.sent
        results = batch.run()
        assert CountingConnection.sent - before == 1
        assert len(results) >= size


def test_no_round_trip_when_nothing_is_configured(
    stage: Stage, counted: redis.Redis, settings: Settings
) -> None:
    correlator = Correlator(counted, settings.namespace, stage.dyn, "NETO", refresh_seconds=3600)
    snap = stage.handler.cache.current()
    rule = next(iter(snap.rules.rules))
    correlator.begin()
    before = CountingConnection.sent
    batch = correlator.begin()
    for n in range(100):
        batch.trigger(raised(rule, n, "disk failed")[0])
    assert all(r.delivered for r in batch.run())
    assert CountingConnection.sent == before
