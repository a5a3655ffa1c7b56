"""Fault 4: the vendor answers 503 for OUTAGE_SECONDS (8 s), then recovers.

A webhook sink (MUTT_FORWARD_CONFIG) points at the scripted vendor server.
While it fails, the shared circuit breaker must open, so the vendor sees at
most ``threshold`` failures plus one probe per cooldown (plus slack) rather
than a retry storm; alerts are parked, not dead-lettered. Once it is back,
the backlog is delivered at the sink's rate limit and each alert is
accepted by the vendor exactly once.

The limiter is a sliding-window *counter* (two fixed windows, the previous
one weighted as if evenly spread): over any k windows it grants at most
(k + 1) x RATE, so a burst right after recovery may reach up to 2 x RATE in
one arbitrary second while the rate over the drain stays at RATE. Those are
the bounds asserted, measured at the vendor (with half a window of slack for
the time between a grant and the request's arrival).
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest
import redis
import yaml

from shared.broker import streams
from shared.broker.keys import Keys
from shared.config import Settings
from shared.dynconfig import DynamicConfig
from tests.support.resilience import Load, Pipeline, consumer_of, report, wait_until
from tests.support.vendor import Recorded, Reply, VendorServer

pytestmark = pytest.mark.slow

OUTAGE_SECONDS = 8.0
RATE = 150  # deliveries per second to this sink
THRESHOLD = 5
COOLDOWN_MS = 1000


def max_in_window(times: list[float], window: float) -> int:
    """The most requests that arrived within any ``window`` seconds."""
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


@pytest.mark.usefixtures("demo_rules")
def test_vendor_outage_opens_the_breaker_then_delivers_everything_once_at_the_rate_limit(
    settings: Settings, r: redis.Redis, keys: Keys, tmp_path: Path, vendor: VendorServer
) -> None:
    config = tmp_path / "forward.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "sinks": [{"name": "hook", "type": "webhook", "url": f"{vendor.url}/hook"}],
                "default": ["hook"],
                "rate_limits": {"hook": RATE},
            }
        )
    )
    dyn = DynamicConfig(r, keys.config)
    for name, value in {
        "forward_rate_window_ms": 1000,
        "breaker_threshold": THRESHOLD,
        "breaker_cooldown_ms": COOLDOWN_MS,
        "forward_retry_base_ms": 200,
        "forward_retry_max_ms": 2000,
        "forward_max_attempts": 100,
    }.items():
        dyn.set(name, str(value))
    breaker = f"{keys.base}:breaker:hook"
    pipeline = Pipeline(settings, tmp_path / "logs", MUTT_FORWARD_CONFIG=str(config))
    try:
        ingest = pipeline.ingest()
        pipeline.workers("alert", "forward", "audit")
        for name in ("alert", "forward", "audit"):
            consumer_of(r, keys, name, pipeline.procs[name].pid)
        load = Load(ingest, batch=25, interval=0.1, max_requests=80, max_seconds=30).start()
        time.sleep(2)
        vendor.default = Reply(503, b"maintenance")
        down = time.monotonic()
        states: Counter[str] = Counter()
        for _ in range(int(OUTAGE_SECONDS / 0.1)):  # watch the breaker through the outage
            states[(r.hget(breaker, "state") or b"closed").decode()] += 1
            time.sleep(0.1)
            if time.monotonic() - down >= OUTAGE_SECONDS:
                break
        vendor.default = Reply(200, b"ok")
        up = time.monotonic()
        load.join(timeout=60)
        load.stop()
        accepted = load.accepted

        def accepted_events() -> set[str]:
            return {req.json()["event_id"] for req in list(vendor.requests) if req.status == 200}

        assert wait_until(
            lambda: pipeline.check("alert", "forward") or accepted <= accepted_events(), 120
        ), pipeline.tail()
        assert streams.wait_drained(r, [(keys.alerts, "forward")], 60), pipeline.tail()
        requests: list[Recorded] = list(vendor.requests)
        failed = [q for q in requests if q.status == 503]
        ok = [q for q in requests if q.status == 200]
        per_alert = Counter(q.headers["Idempotency-Key"] for q in ok)
        delivered = {q.json()["event_id"] for q in ok} & accepted
        after = [q.at for q in ok if q.at >= up]
        peak = max_in_window(after, 1.0)
        peak5 = max_in_window(after, 5.0)
        span = max(after) - min(after) if len(after) > 1 else 0.0
        budget = THRESHOLD + int(OUTAGE_SECONDS * 1000 / COOLDOWN_MS) + 1
        slack = THRESHOLD + 2
        report(
            f"vendor answering 503 for {OUTAGE_SECONDS:.0f} s (webhook sink)",
            sent=load.sent,
            accepted=len(accepted),
            delivered=len(delivered),
            duplicated=sum(n - 1 for n in per_alert.values() if n > 1),
            lost=len(accepted - delivered),
            vendor_requests_during_outage=len(failed),
            probe_budget=f"{budget} + slack {slack}",
            breaker_states_seen=dict(states),
            delivered_after_recovery=len(after),
            rate_limit=RATE,
            peak_in_1s_after_recovery=peak,
            peak_in_5s_after_recovery=peak5,
            drain_seconds=round(span, 1),
            mean_rate_after_recovery=round(len(after) / span, 1) if span else None,
            dead_lettered=r.xlen(keys.dlq("forward")),
        )
        assert set(load.statuses) == {202}, load.statuses
        assert failed, "the vendor never saw the outage"
        assert all(down - 1 <= q.at <= up + 1 for q in failed)
        assert states["open"] > 0  # the breaker opened
        assert len(failed) <= budget + slack  # no retry storm: threshold, then probes
        assert accepted - delivered == set()  # nothing lost...
        assert all(n == 1 for n in per_alert.values())  # ...nothing accepted twice by the vendor
        assert r.xlen(keys.dlq("forward")) == 0  # an outage is not poison: nothing dead-lettered
        # The backlog drained at the rate limit, not faster (see the module docstring).
        assert len(after) > 4 * RATE  # enough of a backlog to measure the pacing
        # Bounds of the counter (2 and 6 windows' worth), plus half a window for the
        # spread between a grant and the request's arrival at the vendor.
        assert peak <= 2.5 * RATE
        assert peak5 <= 6.5 * RATE
        assert len(after) <= RATE * (span + 2)  # the mean over the drain: RATE
    finally:
        pipeline.stop_all()
