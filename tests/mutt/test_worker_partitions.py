"""A stream worker with several partitions: it reads them all, fairly, each hand-off in its own.

Each test runs on one Redis (one XREADGROUP for every partition) and on a
real Redis Cluster (a read per partition, the partitions on different
primaries).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest
import redis
from cloudevents.http import CloudEvent

from mutt.runtime.worker import StreamWorker
from shared.broker import streams
from shared.broker.keys import Keys
from shared.broker.schedule import scheduled_count
from shared.config import Settings
from shared.envelope import FIELD, decode, encode, make_event
from shared.handler import Outcome
from shared.models import TYPE_ALERT, TYPE_GENERIC, JanitorRequest

PARTITIONS = 4


def event(n: int) -> CloudEvent:
    return CloudEvent({"type": TYPE_GENERIC, "source": "/t", "id": str(n)}, {"n": n})


class Recorder:
    """Replies with one alert per event; rejects, parks or retries the numbers it is told."""

    stage = "alert"

    def __init__(self, reject: Sequence[int] = (), park: Sequence[int] = ()) -> None:
        self.reject = set(reject)
        self.park = set(park)
        self.seen: list[int] = []
        self.lock = threading.Lock()

    def handle(self, events: Sequence[CloudEvent]) -> list[Outcome]:
        out = []
        for ev in events:
            n = ev.data["n"]
            with self.lock:
                self.seen.append(n)
            if n in self.reject:
                out.append(Outcome.reject(f"bad {n}"))
            elif n in self.park and ev.get("muttattempt") is None:
                again = CloudEvent({**ev.get_attributes(), "muttattempt": "2"}, ev.data)
                out.append(Outcome.defer(again, 0.2))
            else:
                out.append(Outcome.ok(make_event(TYPE_ALERT, "/t", JanitorRequest(), id=f"r{n}")))
        return out


@pytest.fixture
def pkeys(keys: Keys) -> Keys:
    return Keys(keys.namespace, partitions=PARTITIONS)


@pytest.fixture(params=["redis", "cluster"])
def rr(request: pytest.FixtureRequest, r: redis.Redis) -> redis.Redis:
    """One Redis, or a Redis Cluster client."""
    if request.param == "cluster":
        client: redis.Redis = request.getfixturevalue("cr")
        return client
    return r


def publish(r: redis.Redis, part: Keys, numbers: Sequence[int]) -> None:
    streams.publish(r, part.events, [{FIELD: encode(event(n))} for n in numbers])


def run_until(worker: StreamWorker, cond: object, timeout: float = 20.0) -> None:
    thread = threading.Thread(target=worker.run)
    thread.start()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not cond():  # type: ignore[operator]
            time.sleep(0.02)
    finally:
        worker.stop()
        thread.join(timeout=20)
    assert not thread.is_alive()


def reply_ids(r: redis.Redis, stream: str) -> list[str]:
    return [str(decode(fields[FIELD])["id"]) for _, fields in r.xrange(stream)]


def test_every_partition_is_consumed_and_replies_stay_in_it(
    rr: redis.Redis, pkeys: Keys, settings: Settings
) -> None:
    for part in pkeys.all_partitions():
        publish(rr, part, [part.index * 1000 + i for i in range(150)])
    handler = Recorder()
    worker = StreamWorker(rr, pkeys, settings, handler, pkeys.events, "alert")
    run_until(worker, lambda: len(handler.seen) >= 150 * PARTITIONS)
    assert sorted(handler.seen) == sorted(
        p * 1000 + i for p in range(PARTITIONS) for i in range(150)
    )
    for part in pkeys.all_partitions():
        assert reply_ids(rr, part.alerts) == [f"r{part.index * 1000 + i}" for i in range(150)]
        assert int(rr.xpending(part.events, "alert")["pending"]) == 0


def test_a_busy_partition_does_not_starve_a_quiet_one(
    rr: redis.Redis, pkeys: Keys, settings: Settings
) -> None:
    """2,000 waiting in partition 0 and 5 in partition 2: the 5 are handled within the
    first two batches, not after the 2,000."""
    publish(rr, pkeys.partition(0), range(2000))
    publish(rr, pkeys.partition(2), range(100_000, 100_005))
    handler = Recorder()
    worker = StreamWorker(rr, pkeys, settings, handler, pkeys.events, "alert")
    run_until(worker, lambda: len(handler.seen) >= 2005)
    last_quiet = max(i for i, n in enumerate(handler.seen) if n >= 100_000)
    assert last_quiet < 2 * settings.worker_batch_size + 5, last_quiet
    assert sorted(handler.seen) == [*range(2000), *range(100_000, 100_005)]


def test_dead_letters_and_parked_copies_stay_in_their_partition(
    rr: redis.Redis, pkeys: Keys, settings: Settings
) -> None:
    p1, p3 = pkeys.partition(1), pkeys.partition(3)
    publish(rr, p1, [10, 11])
    publish(rr, p3, [30, 31])
    handler = Recorder(reject=[11], park=[31])
    worker = StreamWorker(rr, pkeys, settings, handler, pkeys.events, "alert")
    run_until(worker, lambda: handler.seen.count(31) == 2 and rr.xlen(p3.alerts) == 2)
    assert [decode(f[FIELD]).data["n"] for _, f in rr.xrange(p1.dlq("alert"))] == [11]
    for other in (0, 2, 3):
        assert rr.xlen(pkeys.partition(other).dlq("alert")) == 0
    assert reply_ids(rr, p1.alerts) == ["r10"]
    assert reply_ids(rr, p3.alerts) == ["r30", "r31"]  # 31 was parked in 3, came back to 3
    assert scheduled_count(rr, p3.events) == 0
    assert all(rr.xlen(pkeys.partition(n).alerts) == 0 for n in (0, 2))


def test_entries_of_a_dead_consumer_are_reclaimed_in_any_partition(
    rr: redis.Redis, pkeys: Keys, settings: Settings
) -> None:
    p2 = pkeys.partition(2)
    publish(rr, p2, range(5))
    streams.ensure_group(rr, p2.events, "alert")
    assert len(streams.read_batch(rr, p2.events, "alert", "dead-one", 10, None)) == 5
    handler = Recorder()
    worker = StreamWorker(rr, pkeys, settings, handler, pkeys.events, "alert")
    run_until(worker, lambda: rr.xlen(p2.alerts) >= 5)
    assert sorted(handler.seen) == [0, 1, 2, 3, 4]
    assert worker.stats.reclaimed == 5
    assert int(rr.xpending(p2.events, "alert")["pending"]) == 0


def test_a_worker_is_given_its_groups_input(
    rr: redis.Redis, pkeys: Keys, settings: Settings
) -> None:
    with pytest.raises(ValueError, match="is not alert's input"):
        StreamWorker(rr, pkeys, settings, Recorder(), pkeys.alerts, "alert")
