"""The gate and finish scripts the delivery engine runs, against real Redis.

Breaker: ``threshold`` consecutive failures open it, half-open lets exactly
one probe through, the probe's success closes it and its failure re-opens
it, a probe that never reports expires. Rate limit: the gate grants what is
available (partial), 0 means no limit. Markers: what a sink accepted is not
sent again and does not take the probe.
"""

from __future__ import annotations

import threading
import time
import uuid

import redis

from functions.forward import breaker
from functions.forward.breaker import Gated, Limits
from shared.broker.keys import Keys
from shared.lua import run_all

THRESHOLD = 3
LIMITS = Limits(cooldown_ms=200, probe_timeout_ms=300, rate_limit=0, rate_window_ms=1000)


def ids(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


def admit(
    r: redis.Redis, keys: Keys, sink: str, alert_ids: list[str], limits: Limits = LIMITS
) -> Gated:
    return breaker.gated(breaker.gate(keys, sink, alert_ids, limits).run(r))


def record(
    r: redis.Redis, keys: Keys, sink: str, outcomes: list[bool], delivered: list[str] | None = None
) -> str:
    call = breaker.finish(keys, sink, delivered or [], outcomes, THRESHOLD)
    return breaker.finished(call.run(r)).state


def test_opens_after_threshold_consecutive_failures(r: redis.Redis, keys: Keys) -> None:
    g = admit(r, keys, "a", ids(10))
    assert (g.admitted, g.granted, g.state) == (10, 10, "closed")
    assert record(r, keys, "a", [False, False, True, False, False]) == "closed"  # not consecutive
    assert record(r, keys, "a", [False]) == "open"
    g = admit(r, keys, "a", ids(10))
    assert (g.admitted, g.granted, g.state) == (0, 0, "open")
    assert 0 < g.breaker_wait_ms <= LIMITS.cooldown_ms
    assert breaker.state(r, keys, "a") == "open"


def test_half_open_lets_exactly_one_probe_through(r: redis.Redis, keys: Keys) -> None:
    record(r, keys, "b", [False] * THRESHOLD)
    time.sleep(0.25)
    results: list[int] = []
    lock = threading.Lock()

    def ask() -> None:
        client = redis.Redis(connection_pool=r.connection_pool)
        got = admit(client, keys, "b", ids(5)).admitted
        with lock:
            results.append(got)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [0] * 7 + [1]
    assert breaker.state(r, keys, "b") == "half_open"


def test_probe_success_closes_and_failure_reopens(r: redis.Redis, keys: Keys) -> None:
    record(r, keys, "c", [False] * THRESHOLD)
    time.sleep(0.25)
    assert admit(r, keys, "c", ids(1)).admitted == 1
    assert record(r, keys, "c", [False]) == "open"
    assert admit(r, keys, "c", ids(1)).admitted == 0
    time.sleep(0.25)
    assert admit(r, keys, "c", ids(1)).admitted == 1
    assert record(r, keys, "c", [True]) == "closed"
    assert admit(r, keys, "c", ids(7)).admitted == 7


def test_a_lost_probe_expires(r: redis.Redis, keys: Keys) -> None:
    record(r, keys, "d", [False] * THRESHOLD)
    time.sleep(0.25)
    assert admit(r, keys, "d", ids(1)).admitted == 1  # this probe never reports
    waiting = admit(r, keys, "d", ids(1))
    assert waiting.admitted == 0
    assert 0 < waiting.breaker_wait_ms <= LIMITS.probe_timeout_ms
    time.sleep(0.35)
    assert admit(r, keys, "d", ids(1)).admitted == 1


def test_what_a_sink_accepted_is_not_sent_again_nor_takes_the_probe(
    r: redis.Redis, keys: Keys
) -> None:
    sent = ids(3)
    assert record(r, keys, "e", [True] * 3, delivered=sent) == "closed"
    fresh = ids(2)
    g = admit(r, keys, "e", [sent[0], fresh[0], sent[1], fresh[1]])
    assert g.done == (True, False, True, False)
    assert g.admitted == g.granted == 2  # counted over the two not delivered before

    record(r, keys, "e", [False] * THRESHOLD)
    time.sleep(0.25)
    g = admit(r, keys, "e", sent)  # all delivered before: a redelivered batch
    assert g.done == (True, True, True)
    assert (g.admitted, g.state) == (0, "")
    assert admit(r, keys, "e", ids(1)).admitted == 1  # the probe was still there


def test_the_rate_limit_grants_what_is_available(r: redis.Redis, keys: Keys) -> None:
    limits = Limits(cooldown_ms=200, probe_timeout_ms=300, rate_limit=100, rate_window_ms=60_000)
    assert admit(r, keys, "f", ids(80), limits).granted == 80
    g = admit(r, keys, "f", ids(30), limits)
    assert (g.admitted, g.granted) == (30, 20)  # partial, unlike ingest
    assert 0 < g.limit_wait_ms <= 60_000
    g = admit(r, keys, "f", ids(5), limits)
    assert (g.granted, g.admitted) == (0, 5)
    assert g.limit_wait_ms > 0


def test_a_rate_limit_of_zero_means_none(r: redis.Redis, keys: Keys) -> None:
    limits = Limits(cooldown_ms=200, probe_timeout_ms=300, rate_limit=0, rate_window_ms=1000)
    g = admit(r, keys, "g", ids(5000), limits)
    assert g.admitted == g.granted == 5000
    assert g.limit_wait_ms == 0
    assert not r.exists(keys.sink_rate_limit("g"))


def test_the_rate_limit_is_global_across_clients(r: redis.Redis, keys: Keys) -> None:
    limits = Limits(cooldown_ms=200, probe_timeout_ms=300, rate_limit=500, rate_window_ms=600_000)
    granted: list[int] = []
    lock = threading.Lock()

    def take() -> None:
        client = redis.Redis(connection_pool=r.connection_pool)
        n = sum(admit(client, keys, "h", ids(2), limits).granted for _ in range(100))
        with lock:
            granted.append(n)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(granted) == 500  # 800 asked, exactly the limit granted, no race


def test_the_window_slides(r: redis.Redis, keys: Keys) -> None:
    limits = Limits(cooldown_ms=200, probe_timeout_ms=300, rate_limit=10, rate_window_ms=200)
    assert admit(r, keys, "i", ids(10), limits).granted == 10
    assert admit(r, keys, "i", ids(1), limits).granted == 0
    time.sleep(0.45)  # two windows later the old permits no longer count
    assert admit(r, keys, "i", ids(10), limits).granted == 10


def test_gate_and_finish_share_one_round_trip(r: redis.Redis, keys: Keys) -> None:
    """How the engine pipelines one sink's finish with the next sink's gate."""
    done = ids(2)
    replies = run_all(
        r,
        [
            breaker.finish(keys, "j", done, [True, False], THRESHOLD),
            breaker.gate(keys, "j", [*done, *ids(1)], LIMITS),
        ],
    )
    assert breaker.finished(replies[0]) == breaker.Finished("closed", 1)
    assert breaker.gated(replies[1]).done == (True, True, False)
