"""The engine's Redis round trips per batch, marker ordering, and end-to-end latency."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from cloudevents.http import CloudEvent

from functions.forward import breaker
from functions.forward.delivery import Deliverer
from functions.forward.routing import Route, RouteMatch, Router
from functions.forward.sinks.base import SendResult
from shared.broker.keys import Keys
from shared.dynconfig import DynamicConfig
from shared.envelope import make_event
from shared.lua import LuaScript
from shared.metrics import REGISTRY, render
from shared.models import TYPE_ALERT, Alert
from tests.forward.test_delivery import Scripted
from tests.support.factories import alert, alert_event


class Counted:
    """A client whose round trips to Redis are counted (one per command or pipeline)."""

    def __init__(self, r: redis.Redis) -> None:
        pool = r.connection_pool
        counter = self

        class Connection(pool.connection_class):  # type: ignore[name-defined,misc]
            def send_packed_command(self, command: Any, check_health: bool = True) -> None:
                counter.trips += 1
                super().send_packed_command(command, check_health)

        self.trips = 0
        self.client = redis.Redis(
            connection_pool=redis.ConnectionPool(
                connection_class=Connection, **pool.connection_kwargs
            )
        )


def engine(
    r: redis.Redis, keys: Keys, sinks: list[Scripted], router: Router | None = None
) -> tuple[Deliverer, Counted]:
    counted = Counted(r)
    dyn = DynamicConfig(r, keys.config, refresh_seconds=3600)  # its reads are not counted
    dyn.set("forward_rate_limit", "100000")  # the limiter on: its permits are in the gate
    dyn.get("forward_rate_limit")
    deliverer = Deliverer(
        counted.client, keys, {s.name: s for s in sinks}, router or Router([], [sinks[0].name]), dyn
    )
    return deliverer, counted


def both(*names: str) -> Router:
    return Router([Route(match=RouteMatch(team=["neto"]), sinks=list(names))], [names[0]])


def test_a_batch_costs_one_round_trip_per_sink_plus_one(r: redis.Redis, keys: Keys) -> None:
    one = Scripted("one")
    deliverer, counted = engine(r, keys, [one])
    deliverer.handle([alert_event(i) for i in range(50)])  # loads the scripts
    counted.trips = 0
    outcomes = deliverer.handle([alert_event(i) for i in range(50, 150)])
    assert all(o.status == "ok" and len(o.replies) == 1 for o in outcomes)
    assert len(one.delivered) == 150
    assert counted.trips == 2  # gate (markers, breaker, rate limit); finish (markers, breaker)

    a, b = Scripted("a"), Scripted("b")
    deliverer, counted = engine(r, keys, [a, b], both("a", "b"))
    deliverer.handle([alert_event(1000)])  # connects (its handshake is not the engine's)
    counted.trips = 0
    deliverer.handle([alert_event(i) for i in range(200, 300)])
    assert len(a.delivered) == len(b.delivered) == 101
    assert counted.trips == 3  # gate a; finish a + gate b; finish b

    counted.trips = 0
    outcomes = deliverer.handle([alert_event(i) for i in range(200, 300)])  # redelivered
    assert {r["outcome"] for o in outcomes for r in (x.data for x in o.replies)} == {"duplicate"}
    assert len(a.calls) == len(b.calls) == 101  # nothing sent again
    assert counted.trips == 2  # one gate per sink, nothing to finish


def test_a_sinks_markers_are_written_before_the_next_sink_sends(r: redis.Redis, keys: Keys) -> None:
    """A kill during sink b's sends must not make sink a deliver again."""
    seen: list[bool] = []

    def check_a(n: int, a: Alert) -> SendResult:
        seen.append(bool(r.exists(f"{keys.base}:delivered:a:{a.alert_id}")))
        return SendResult("delivered", 200)

    deliverer, _ = engine(r, keys, [Scripted("a"), Scripted("b", check_a)], both("a", "b"))
    deliverer.handle([alert_event(i) for i in range(5)])
    assert seen == [True] * 5


def test_scripts_unknown_to_redis_are_loaded(
    r: redis.Redis, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a Redis restart the scripts are gone: NOSCRIPT loads them, nothing is lost."""
    salt = f"\n-- {uuid.uuid4()}\n"  # a source Redis has never seen (no SCRIPT FLUSH needed)
    monkeypatch.setattr(breaker, "GATE", LuaScript(breaker.GATE.source + salt))
    monkeypatch.setattr(breaker, "FINISH", LuaScript(breaker.FINISH.source + salt))
    sink = Scripted("s")
    deliverer, _ = engine(r, keys, [sink])
    deliverer.handle([alert_event(i) for i in range(3)])
    assert len(sink.delivered) == 3
    assert r.exists(*(f"{keys.base}:delivered:s:{alert(i).alert_id}" for i in range(3))) == 3


def received_ago(i: int, seconds: float) -> CloudEvent:
    a = alert(i)
    received = datetime.now(UTC) - timedelta(seconds=seconds)
    a = a.model_copy(update={"event": a.event.model_copy(update={"received_at": received})})
    return make_event(TYPE_ALERT, "/mutt/alert", a, id=str(a.alert_id))


def latency(sink: str, what: str) -> float:
    value = REGISTRY.get_sample_value(f"mutt_alert_delivery_latency_seconds_{what}", {"sink": sink})
    return value or 0.0


def test_end_to_end_latency_is_observed_once_per_delivery(r: redis.Redis, keys: Keys) -> None:
    name = f"lat-{uuid.uuid4().hex[:8]}"
    sink = Scripted(name)
    deliverer, _ = engine(r, keys, [sink])
    started = datetime.now(UTC)
    deliverer.handle([received_ago(i, 90) for i in range(4)])
    took = (datetime.now(UTC) - started).total_seconds()
    assert latency(name, "count") == 4
    # Each alert was received 90 s before it was built, and delivered within `took`.
    assert 4 * 90 <= latency(name, "sum") <= 4 * (90 + took)
    le_60, le_inf = (
        REGISTRY.get_sample_value(
            "mutt_alert_delivery_latency_seconds_bucket", {"sink": name, "le": le}
        )
        for le in ("60.0", "+Inf")
    )
    assert (le_60, le_inf) == (0, 4)
    deliverer.handle([received_ago(i, 90) for i in range(4)])  # redelivered: markers say done
    assert latency(name, "count") == 4

    repeat = Scripted(f"{name}-dup", lambda n, a: SendResult("delivered", 200, duplicate=True))
    deliverer, _ = engine(r, keys, [repeat])
    deliverer.handle([received_ago(i, 1) for i in range(10, 12)])  # the sink knew them
    assert latency(repeat.name, "count") == 0

    body, _ = render()
    assert f'mutt_alert_delivery_latency_seconds_count{{sink="{name}"}} 4.0'.encode() in body
