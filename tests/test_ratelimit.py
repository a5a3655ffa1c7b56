"""The shared sliding-window limiter against real Redis."""

from __future__ import annotations

import threading

import redis

from shared.broker.keys import Keys
from shared.ratelimit import SlidingWindowLimiter


def test_grants_up_to_the_limit_then_refuses_with_retry_after(r: redis.Redis, keys: Keys) -> None:
    lim = SlidingWindowLimiter(r, f"{keys.base}:rl:a")
    got = [lim.acquire(1, 50, 60_000, all_or_nothing=True) for _ in range(60)]
    assert sum(g.granted for g in got) == 50
    refused = [g for g in got if g.granted == 0]
    assert len(refused) == 10
    assert all(1 <= g.retry_after_ms <= 60_000 for g in refused)
    assert refused[0].retry_after_seconds >= 1


def test_all_or_nothing_versus_partial(r: redis.Redis, keys: Keys) -> None:
    lim = SlidingWindowLimiter(r, f"{keys.base}:rl:b")
    assert lim.acquire(80, 100, 60_000, all_or_nothing=True).granted == 80
    assert lim.acquire(30, 100, 60_000, all_or_nothing=True).granted == 0
    partial = lim.acquire(30, 100, 60_000, all_or_nothing=False)
    assert partial.granted == 20
    assert partial.retry_after_ms > 0


def test_zero_limit_means_unlimited(r: redis.Redis, keys: Keys) -> None:
    lim = SlidingWindowLimiter(r, f"{keys.base}:rl:c")
    assert lim.acquire(10_000, 0, 1000, all_or_nothing=True).granted == 10_000
    assert not r.exists(f"{keys.base}:rl:c")


def test_limit_is_global_across_clients(r: redis.Redis, keys: Keys, settings: object) -> None:
    granted: list[int] = []
    lock = threading.Lock()

    def take() -> None:
        client = redis.Redis(connection_pool=r.connection_pool)
        lim = SlidingWindowLimiter(client, f"{keys.base}:rl:d")
        n = sum(lim.acquire(1, 500, 600_000, all_or_nothing=True).granted for _ in range(200))
        with lock:
            granted.append(n)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(granted) == 500  # 800 asked, exactly the limit granted, no race


def test_window_slides(r: redis.Redis, keys: Keys) -> None:
    import time

    lim = SlidingWindowLimiter(r, f"{keys.base}:rl:e")
    assert lim.acquire(10, 10, 200, all_or_nothing=True).granted == 10
    assert lim.acquire(1, 10, 200, all_or_nothing=True).granted == 0
    time.sleep(0.45)  # two windows later the old permits no longer count
    assert lim.acquire(10, 10, 200, all_or_nothing=True).granted == 10
