"""The delivery engine through the alerts stream, against real Redis.

The sink here is a scripted in-process target (the vendor sinks have their
own tests against local HTTP servers); everything else — streams, rate
limiter, breaker, markers, parking — is the real thing.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

import orjson
import pytest
import redis
from prometheus_client import REGISTRY

from functions.forward.delivery import Deliverer
from functions.forward.routing import Route, RouteMatch, Router
from functions.forward.sinks.base import SendResult
from mutt.runtime.worker import StreamWorker
from shared.broker import streams
from shared.broker.keys import Keys
from shared.config import Settings
from shared.dynconfig import DynamicConfig
from shared.envelope import FIELD, encode
from shared.models import Alert
from tests.support.factories import alert_event


class Scripted:
    """A sink whose answers follow ``script(call_number, alert)``."""

    def __init__(self, name: str, script: Callable[[int, Alert], SendResult] | None = None) -> None:
        self.name = name
        self.script = script or (lambda n, a: SendResult("delivered", 200))
        self.calls: list[tuple[float, str]] = []
        self.delivered: Counter[str] = Counter()
        self._lock = threading.Lock()

    def send(self, alert: Alert) -> SendResult:
        with self._lock:
            n = len(self.calls)
            self.calls.append((time.monotonic(), str(alert.alert_id)))
        result = self.script(n, alert)
        if result.outcome == "delivered":
            self.delivered[str(alert.alert_id)] += 1
        return result

    def health(self) -> bool:
        return True


def run_forward(
    r: redis.Redis,
    keys: Keys,
    settings: Settings,
    sinks: list[Scripted],
    done: Callable[[], bool],
    router: Router | None = None,
    timeout: float = 30,
) -> Deliverer:
    dyn = DynamicConfig(r, keys.config, refresh_seconds=0.1)
    deliverer = Deliverer(
        r, keys, {s.name: s for s in sinks}, router or Router([], [sinks[0].name]), dyn
    )
    worker = StreamWorker(r, keys, settings, deliverer, keys.alerts, "forward")
    thread = threading.Thread(target=worker.run)
    thread.start()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not done():
            time.sleep(0.05)
    finally:
        worker.stop()
        thread.join(timeout=10)
    return deliverer


def publish_alerts(r: redis.Redis, keys: Keys, n: int, start: int = 0) -> None:
    streams.publish(
        r, keys.alerts, [{FIELD: encode(alert_event(i))} for i in range(start, start + n)]
    )


def reports(r: redis.Redis, keys: Keys) -> list[dict[str, object]]:
    return [orjson.loads(f[FIELD])["data"] for _, f in r.xrange(keys.delivered)]


def dlq(r: redis.Redis, keys: Keys) -> list[dict[bytes, bytes]]:
    return [f for _, f in r.xrange(keys.dlq("forward"))]


def test_rate_limited_alerts_wait_and_none_is_lost(
    r: redis.Redis, keys: Keys, settings: Settings
) -> None:
    dyn = DynamicConfig(r, keys.config)
    dyn.set("forward_rate_limit", "200")
    dyn.set("forward_rate_window_ms", "500")
    sink = Scripted("s")
    publish_alerts(r, keys, 1000)
    started = time.monotonic()
    run_forward(
        r,
        keys,
        settings,
        [sink],
        lambda: len(sink.delivered) >= 1000 and streams.drained(r, keys.alerts, "forward"),
    )
    elapsed = time.monotonic() - started
    assert len(sink.delivered) == 1000  # none lost
    assert max(sink.delivered.values()) == 1  # none twice
    assert elapsed >= 1.5  # paced: 1000 at 400/s cannot finish sooner
    # Never more than the limit in any window: 200 per 500 ms (+ the sliding estimate's slack).
    times = sorted(t for t, _ in sink.calls)
    worst = max(sum(1 for t in times if s <= t < s + 0.5) for s in times)
    assert worst <= 420
    assert dlq(r, keys) == []


def test_breaker_opens_parks_without_burning_retries_and_recovers(
    r: redis.Redis, keys: Keys, settings: Settings
) -> None:
    dyn = DynamicConfig(r, keys.config)
    dyn.set("breaker_threshold", "3")
    dyn.set("breaker_cooldown_ms", "300")
    dyn.set("forward_max_attempts", "8")
    dyn.set("forward_retry_base_ms", "50")
    dyn.set("forward_retry_max_ms", "100")
    dyn.set("forward_rate_limit", "0")
    outage_until = time.monotonic() + 1.5

    def flaky(n: int, alert: Alert) -> SendResult:
        if time.monotonic() < outage_until:
            return SendResult("retry", 503, "down")
        return SendResult("delivered", 200)

    sink = Scripted("s", flaky)
    publish_alerts(r, keys, 50)
    run_forward(
        r,
        keys,
        settings,
        [sink],
        lambda: len(sink.delivered) >= 50 and streams.drained(r, keys.alerts, "forward"),
    )
    assert len(sink.delivered) == 50
    # 8 attempts' backoff (at most 100 ms each) is spent well within the 1.5 s outage:
    # only the breaker's parking (no attempt burnt while open) kept these alerts.
    assert dlq(r, keys) == []
    during = [t for t, _ in sink.calls if t < outage_until]
    # 3 failures open it; then at most one probe per cooldown (300 ms) during 1.5 s.
    assert len(during) <= 3 + 8, len(during)


def test_retry_classes(r: redis.Redis, keys: Keys, settings: Settings) -> None:
    """A vendor's 4xx dead-letters; an outage never does, however long it lasts."""
    dyn = DynamicConfig(r, keys.config)
    dyn.set("forward_max_attempts", "3")
    dyn.set("forward_retry_base_ms", "20")
    dyn.set("forward_retry_max_ms", "40")
    dyn.set("breaker_threshold", "1000")
    answers = {0: SendResult("permanent", 400, "bad payload"), 1: SendResult("retry", 500, "oops")}
    ids: dict[str, int] = {}

    def script(n: int, alert: Alert) -> SendResult:
        which = ids.setdefault(str(alert.alert_id), len(ids))
        return answers.get(which, SendResult("delivered", 202))

    sink = Scripted("s", script)
    publish_alerts(r, keys, 3)
    stuck_before = REGISTRY.get_sample_value("mutt_deliveries_stuck_total", {"sink": "s"}) or 0

    def failing_calls() -> int:
        per_alert = Counter(a for _, a in sink.calls)
        return max(per_alert.values(), default=0)

    run_forward(r, keys, settings, [sink], lambda: len(dlq(r, keys)) >= 1 and failing_calls() >= 6)
    (dead,) = dlq(r, keys)
    assert b"permanent failure at s: bad payload" in dead[b"dlq_reason"]
    assert len(sink.delivered) == 1
    per_alert = Counter(a for _, a in sink.calls)
    # permanent: once; delivered: once; the outage: retried past forward_max_attempts
    assert sorted(per_alert.values())[:2] == [1, 1]
    assert max(per_alert.values()) >= 6
    stuck = REGISTRY.get_sample_value("mutt_deliveries_stuck_total", {"sink": "s"}) or 0
    assert stuck - stuck_before >= 3
    assert not streams.drained(r, keys.alerts, "forward")  # the failing one is still parked


def test_redelivered_alert_is_not_sent_twice(
    r: redis.Redis, keys: Keys, settings: Settings
) -> None:
    sink = Scripted("s")
    publish_alerts(r, keys, 5)
    publish_alerts(r, keys, 5)  # the same five alerts again (a redelivery upstream)
    run_forward(r, keys, settings, [sink], lambda: len(reports(r, keys)) >= 10)
    assert len(sink.calls) == 5
    outcomes = Counter(x["outcome"] for x in reports(r, keys))
    assert outcomes == {"delivered": 5, "duplicate": 5}


def test_routing_to_several_sinks_tracks_each(
    r: redis.Redis, keys: Keys, settings: Settings
) -> None:
    DynamicConfig(r, keys.config).set("forward_retry_base_ms", "20")
    good = Scripted("good")
    refusing = Scripted("refusing", lambda n, a: SendResult("permanent", 401, "unauthorized"))
    slow_start = Scripted(
        "flaky", lambda n, a: SendResult("retry", 503) if n < 3 else SendResult("delivered", 200)
    )
    router = Router(
        [Route(match=RouteMatch(team=["neto"]), sinks=["good", "refusing", "flaky"])], ["good"]
    )
    publish_alerts(r, keys, 3)
    run_forward(
        r,
        keys,
        settings,
        [good, refusing, slow_start],
        lambda: len(slow_start.delivered) >= 3 and streams.drained(r, keys.alerts, "forward"),
        router=router,
    )
    assert len(good.delivered) == 3 and max(good.delivered.values()) == 1
    assert len(slow_start.delivered) == 3
    assert len(dlq(r, keys)) == 3
    assert all(f[b"dlq_reason"].startswith(b"permanent failure at refusing") for f in dlq(r, keys))


@pytest.mark.slow
def test_twenty_thousand_alerts_at_500_per_second_all_arrive_once(
    r: redis.Redis, keys: Keys, settings: Settings
) -> None:
    """The v2.5 forwarder lost 17,335 of 20,000 alerts at its rate limit; this one loses none."""
    from functions.forward.handler import make_forward_handler
    from shared.context import Context

    n = 20_000
    dyn = DynamicConfig(r, keys.config)
    dyn.set("forward_rate_limit", "500")
    dyn.set("forward_rate_window_ms", "1000")
    for start in range(0, n, 2000):
        publish_alerts(r, keys, 2000, start)
    ctx = Context(settings.model_copy(update={"worker_batch_size": 500}))
    worker = StreamWorker(r, keys, ctx.settings, make_forward_handler(ctx), keys.alerts, "forward")
    thread = threading.Thread(target=worker.run)
    started = time.monotonic()
    thread.start()
    try:
        assert streams.wait_drained(r, [(keys.alerts, "forward")], timeout=150)
    finally:
        worker.stop()
        thread.join(timeout=30)
    elapsed = time.monotonic() - started
    ids = [orjson.loads(x)["alert_id"] for x in settings.sink_path.read_bytes().splitlines()]
    assert len(ids) == n  # none lost
    assert len(set(ids)) == n  # none twice
    assert elapsed >= 0.9 * n / 500  # and the limit held
    assert dlq(r, keys) == []
