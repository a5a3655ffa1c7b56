"""Fixtures for correlation tests: the real alert handler on real Redis and PostgreSQL.

Time is a test clock handed to the correlator, so windows, settling and
storm minutes are exercised without sleeping; the rules come from the
database like in production, and the correlation file is stored in Redis
exactly as ``mutt correlation apply`` stores it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pg8000.native
import pytest
import redis
from cloudevents.http import CloudEvent

from functions.alert.cache import RuleCache
from functions.alert.catalog import insert_catalog, parse_catalog
from functions.alert.correlation import TYPE_TIMER, Correlator
from functions.alert.correlation.config import parse_correlation, store_doc
from functions.alert.handler import AlertHandler
from functions.alert.unhandled import UnhandledCounter
from shared.broker.keys import CorrelationKeys
from shared.config import Settings
from shared.db.connection import connect_pg
from shared.dynconfig import DynamicConfig
from shared.handler import Outcome
from shared.models import TYPE_ALERT, TYPE_AUDIT, Alert
from tests.support.factories import accepted_event

T0 = 1_750_000_000.0 - 1_750_000_000.0 % 60  # a minute boundary, so storm windows are exact

RULES: dict[str, Any] = {
    "rules": [
        {
            "match_type": "contains",
            "match_string": "changed state to down",
            "priority": 10,
            "prod_handling": "Page_and_ticket",
            "dev_handling": "Ticket_only",
            "team_assignment": "NetOps",
        },
        {
            "match_type": "regex",
            "match_string": r"ADJCHANGE: neighbor \S+ Down",
            "priority": 20,
            "prod_handling": "Page_only",
            "dev_handling": "Ignore",
            "team_assignment": "Routing",
        },
        {
            "match_type": "contains",
            "match_string": "disk failed",
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
    "development_hosts": ["lab-rtr1"],
}


def link(state: str, iface: str = "GigabitEthernet0/1") -> str:
    return f"%LINK-3-UPDOWN: Interface {iface}, changed state to {state}"


def bgp(state: str, peer: str = "10.0.0.2") -> str:
    return f"%BGP-5-ADJCHANGE: neighbor {peer} {state}"


class Clock:
    """The correlator's clock: seconds since the epoch, moved by tests."""

    def __init__(self, start: float = T0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Stage:
    """The alert stage under test and what it produced."""

    handler: AlertHandler
    clock: Clock
    dyn: DynamicConfig
    r: redis.Redis
    keys: CorrelationKeys
    rules: dict[str, int]
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def event(self, message: str, host: str = "core-1", **extra: object) -> CloudEvent:
        return accepted_event(next(self._ids), message, hostname=host, **extra)

    def send(self, *messages: str | CloudEvent, host: str = "core-1") -> list[Outcome]:
        events = [m if isinstance(m, CloudEvent) else self.event(m, host) for m in messages]
        outcomes = self.handler.handle(events)
        assert all(o.status == "ok" for o in outcomes), [o.reason for o in outcomes]
        return outcomes

    def pairs(self, *pairs: dict[str, Any]) -> None:
        store_doc(self.r, self.keys, parse_correlation({"pairs": list(pairs)}))

    def pair_links(self) -> None:
        self.pairs(
            {
                "rule": self.rules["changed state to down"],
                "clear": "changed state to up",
                "instance": r"Interface (?P<instance>[^,\s]+)",
            }
        )

    def set(self, **knobs: int) -> None:
        for name, value in knobs.items():
            self.dyn.set(name, str(value))


def alerts(outcomes: list[Outcome]) -> list[Alert]:
    return [
        Alert.model_validate(r.data) for o in outcomes for r in o.replies if r["type"] == TYPE_ALERT
    ]


def records(outcomes: list[Outcome]) -> list[dict[str, Any]]:
    return [r.data for o in outcomes for r in o.replies if r["type"] == TYPE_AUDIT]


def timers(outcomes: list[Outcome]) -> list[tuple[CloudEvent, float]]:
    found = [later for o in outcomes for later in o.later]
    assert all(ce["type"] == TYPE_TIMER for ce, _ in found)
    return found


@pytest.fixture
def rule_ids(
    settings: Settings, pg: pg8000.native.Connection, r: redis.Redis
) -> Iterator[dict[str, int]]:
    insert_catalog(pg, r, settings.namespace, parse_catalog(RULES))
    rows = pg.run("SELECT match_string, id FROM alert_rules")
    yield {str(m): int(i) for m, i in rows}
    pg.run("DELETE FROM alert_rules; DELETE FROM development_hosts; DELETE FROM device_teams")


@pytest.fixture
def stage(settings: Settings, r: redis.Redis, rule_ids: dict[str, int]) -> Stage:
    url = settings.database_url or ""
    cache = RuleCache(
        lambda: connect_pg(url, settings.database_schema), r, settings.namespace, check_seconds=0
    )
    cache.warm()
    dyn = DynamicConfig(r, f"{settings.namespace}:config", refresh_seconds=0)
    clock = Clock()
    correlator = Correlator(r, settings.namespace, dyn, "NETO", clock=clock, refresh_seconds=0)
    handler = AlertHandler(cache, UnhandledCounter(r, settings.namespace), dyn, "NETO", correlator)
    return Stage(handler, clock, dyn, r, CorrelationKeys(settings.namespace), rule_ids)


@pytest.fixture
def mutt(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Any:
    from tests.support.cli import in_process

    return in_process(settings, monkeypatch, capsys)
