"""The shared circuit breaker against real Redis."""

from __future__ import annotations

import threading
import time

import redis

from functions.forward.breaker import BreakerSettings, CircuitBreaker
from shared.broker.keys import Keys


def breaker(r: redis.Redis, keys: Keys, name: str, cooldown_ms: int = 200) -> CircuitBreaker:
    s = BreakerSettings(threshold=3, cooldown_ms=cooldown_ms, probe_timeout_ms=300)
    return CircuitBreaker(r, f"{keys.base}:breaker:{name}", s)


def test_opens_after_threshold_consecutive_failures(r: redis.Redis, keys: Keys) -> None:
    b = breaker(r, keys, "a")
    assert b.admit(10).admitted == 10
    assert b.record([False, False, True, False, False]) == "closed"  # not consecutive
    assert b.record([False]) == "open"
    adm = b.admit(10)
    assert adm.admitted == 0
    assert adm.state == "open"
    assert 0 < adm.retry_after_ms <= 200


def test_half_open_lets_exactly_one_probe_through(r: redis.Redis, keys: Keys) -> None:
    b = breaker(r, keys, "b")
    b.record([False, False, False])
    time.sleep(0.25)
    results: list[int] = []
    lock = threading.Lock()

    def ask() -> None:
        other = CircuitBreaker(redis.Redis(connection_pool=r.connection_pool), b.key, b.settings)
        got = other.admit(5).admitted
        with lock:
            results.append(got)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [0] * 7 + [1]
    assert b.state() == "half_open"


def test_probe_success_closes_and_failure_reopens(r: redis.Redis, keys: Keys) -> None:
    b = breaker(r, keys, "c")
    b.record([False] * 3)
    time.sleep(0.25)
    assert b.admit(1).admitted == 1
    assert b.record([False]) == "open"
    assert b.admit(1).admitted == 0
    time.sleep(0.25)
    assert b.admit(1).admitted == 1
    assert b.record([True]) == "closed"
    assert b.admit(7).admitted == 7


def test_a_lost_probe_expires(r: redis.Redis, keys: Keys) -> None:
    b = breaker(r, keys, "d")
    b.record([False] * 3)
    time.sleep(0.25)
    assert b.admit(1).admitted == 1  # this probe never reports
    assert b.admit(1).admitted == 0
    time.sleep(0.35)
    assert b.admit(1).admitted == 1
