"""Ingest's global rate limit, through the Admitter the HTTP function uses, on real Redis.

A request is admitted whole or refused whole (with when to retry); the
limit holds across every client and instance; 0 turns it off; the window
slides.
"""

from __future__ import annotations

import threading
import time
from itertools import count

import redis

from functions.ingest.admission import Admission, Admitter
from shared.broker.keys import Keys
from shared.dynconfig import DynamicConfig
from shared.models import Event
from tests.support.factories import event

_numbers = count()


def events(n: int) -> list[Event]:
    """``n`` events never seen before (dedup would not refuse them, only count them)."""
    return [event(next(_numbers)) for _ in range(n)]


def admitter(r: redis.Redis, keys: Keys, per_window: int, window_ms: int) -> Admitter:
    """The Admitter of an ingest instance, with the limit set as ``mutt config set`` does."""
    dyn = DynamicConfig(r, keys.config)
    dyn.set("ingest_rate_limit", str(per_window))
    dyn.set("ingest_rate_window_ms", str(window_ms))
    return Admitter(r, keys, dyn)


def test_admits_up_to_the_limit_then_refuses_with_retry_after(r: redis.Redis, keys: Keys) -> None:
    adm = admitter(r, keys, 50, 60_000)
    got = [adm.admit(events(1)) for _ in range(60)]
    assert sum(a.published for a in got) == 50
    refused = [a for a in got if a.refused]
    assert len(refused) == 10
    assert all(1 <= a.retry_after_ms <= 60_000 for a in refused)
    assert all(a.published == 0 for a in refused)
    assert r.xlen(keys.events) == 50


def test_a_request_is_admitted_whole_or_refused_whole(r: redis.Redis, keys: Keys) -> None:
    adm = admitter(r, keys, 100, 60_000)
    assert adm.admit(events(80)) == Admission(False, published=80, duplicates=(False,) * 80)
    too_many = adm.admit(events(30))  # 20 would fit: none is taken
    assert too_many.refused
    assert too_many.retry_after_ms > 0
    assert r.xlen(keys.events) == 80
    assert adm.admit(events(20)).published == 20


def test_a_limit_of_zero_means_none(r: redis.Redis, keys: Keys) -> None:
    adm = admitter(r, keys, 0, 1000)
    assert adm.admit(events(2000)).published == 2000
    assert not r.exists(keys.ingest_rate_limit)


def test_the_limit_is_global_across_clients(r: redis.Redis, keys: Keys) -> None:
    admitter(r, keys, 500, 600_000)
    admitted: list[int] = []
    lock = threading.Lock()
    batches = [events(1) for _ in range(800)]

    def take(mine: list[list[Event]]) -> None:
        client = redis.Redis(connection_pool=r.connection_pool)
        adm = Admitter(client, keys, DynamicConfig(client, keys.config))
        n = sum(adm.admit(batch).published for batch in mine)
        with lock:
            admitted.append(n)

    threads = [threading.Thread(target=take, args=(batches[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(admitted) == 500  # 800 asked, exactly the limit admitted, no race
    assert r.xlen(keys.events) == 500


def test_the_window_slides(r: redis.Redis, keys: Keys) -> None:
    adm = admitter(r, keys, 10, 200)
    assert adm.admit(events(10)).published == 10
    assert adm.admit(events(1)).refused
    time.sleep(0.45)  # two windows later the old permits no longer count
    assert adm.admit(events(10)).published == 10
