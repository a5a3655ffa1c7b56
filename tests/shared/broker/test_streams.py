"""The Redis Streams core and the worker runtime, against real Redis."""

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
from shared.config import Settings
from shared.envelope import FIELD, decode, encode, make_event
from shared.handler import Outcome
from shared.models import TYPE_ALERT, TYPE_GENERIC, JanitorRequest


def ping_event(i: int) -> CloudEvent:
    return CloudEvent({"type": TYPE_GENERIC, "source": "/t", "id": str(i)}, {"n": i})


class Echo:
    """Replies with one alert-typed event per input; fails as told."""

    stage = "alert"

    def __init__(self, fail: dict[int, str] | None = None) -> None:
        self.fail = fail or {}
        self.seen: list[int] = []

    def handle(self, events: Sequence[CloudEvent]) -> list[Outcome]:
        out = []
        for ev in events:
            n = ev.data["n"]
            self.seen.append(n)
            mode = self.fail.get(n)
            if mode == "reject":
                out.append(Outcome.reject(f"bad {n}"))
            elif mode == "retry":
                out.append(Outcome.retry(f"later {n}"))
            else:
                reply = make_event(TYPE_ALERT, "/t", JanitorRequest(), id=f"r{n}")
                out.append(Outcome.ok(reply))
        return out


def publish(r: redis.Redis, stream: str, n: int) -> None:
    streams.publish(r, stream, [{FIELD: encode(ping_event(i))} for i in range(n)])


def run_until(worker: StreamWorker, cond: object, timeout: float = 10.0) -> None:
    thread = threading.Thread(target=worker.run)
    thread.start()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not cond():  # type: ignore[operator]
            time.sleep(0.02)
    finally:
        worker.stop()
        thread.join(timeout=10)
    assert not thread.is_alive()


def pending_count(r: redis.Redis, stream: str, group: str) -> int:
    return int(r.xpending(stream, group)["pending"])


def test_publish_read_and_settle(r: redis.Redis, keys: Keys) -> None:
    publish(r, keys.events, 3)
    streams.ensure_group(r, keys.events, "alert")
    batch = streams.read_batch(r, keys.events, "alert", "c1", 10, None)
    assert [decode(e.fields[FIELD]).data["n"] for e in batch] == [0, 1, 2]
    assert pending_count(r, keys.events, "alert") == 3
    plan = streams.Settlement()
    for e in batch:
        plan.add(keys.alerts, {FIELD: e.fields[FIELD]})
        plan.ack(e.id)
    streams.settle(r, keys.events, "alert", plan)
    assert pending_count(r, keys.events, "alert") == 0
    assert r.xlen(keys.alerts) == 3


def test_group_created_late_still_sees_earlier_entries(r: redis.Redis, keys: Keys) -> None:
    publish(r, keys.events, 2)
    streams.ensure_group(r, keys.events, "alert")
    streams.ensure_group(r, keys.events, "alert")  # idempotent
    assert len(streams.read_batch(r, keys.events, "alert", "c", 10, None)) == 2


def test_worker_hands_off_replies_and_acks(r: redis.Redis, keys: Keys, settings: Settings) -> None:
    publish(r, keys.events, 250)
    handler = Echo()
    worker = StreamWorker(r, keys, settings, handler, keys.events, "alert")
    run_until(worker, lambda: r.xlen(keys.alerts) >= 250)
    assert sorted(handler.seen) == list(range(250))
    assert r.xlen(keys.alerts) == 250
    assert pending_count(r, keys.events, "alert") == 0
    assert worker.stats.batches >= 3  # read in batches of 100


def test_rejected_and_undecodable_entries_go_to_the_dlq(
    r: redis.Redis, keys: Keys, settings: Settings
) -> None:
    publish(r, keys.events, 3)
    r.xadd(keys.events, {FIELD: b"{not json"})
    r.xadd(keys.events, {b"other": b"x"})
    worker = StreamWorker(r, keys, settings, Echo({1: "reject"}), keys.events, "alert")
    run_until(worker, lambda: r.xlen(keys.dlq("alert")) >= 3)
    dead = r.xrange(keys.dlq("alert"))
    reasons = sorted(fields[b"dlq_reason"].decode() for _, fields in dead)
    assert reasons[0] == "bad 1"
    assert all(fields[b"dlq_stage"] == b"alert" for _, fields in dead)
    assert all(fields[b"dlq_deliveries"] == b"1" for _, fields in dead)
    assert sum("undecodable" in x for x in reasons) == 2
    assert r.xlen(keys.alerts) == 2
    assert pending_count(r, keys.events, "alert") == 0


def test_transient_failure_is_retried_then_dead_lettered(
    r: redis.Redis, keys: Keys, settings: Settings
) -> None:
    settings = settings.model_copy(update={"max_deliveries": 3, "retry_delay_seconds": 0.1})
    publish(r, keys.events, 2)
    handler = Echo({0: "retry"})
    worker = StreamWorker(r, keys, settings, handler, keys.events, "alert")
    run_until(worker, lambda: r.xlen(keys.dlq("alert")) >= 1)
    assert handler.seen.count(0) == 3  # delivered max_deliveries times, then given up
    ((_, fields),) = r.xrange(keys.dlq("alert"))
    assert fields[b"dlq_deliveries"] == b"4"
    assert b"delivered 4 times" in fields[b"dlq_reason"]
    assert decode(fields[FIELD]).data == {"n": 0}
    assert r.xlen(keys.alerts) == 1


def test_heartbeat_lives_while_the_worker_runs(
    r: redis.Redis, keys: Keys, settings: Settings
) -> None:
    worker = StreamWorker(r, keys, settings, Echo(), keys.events, "alert", consumer="hb1")
    key = keys.heartbeat("alert", "hb1")
    seen: list[bool] = []

    def beating() -> bool:
        alive = bool(r.exists(key))
        if alive or seen:
            seen.append(alive)
        return len(seen) > 80  # well past the 1 s TTL: the beat is being renewed

    run_until(worker, beating)
    assert len(seen) > 80
    assert all(seen)
    assert not r.exists(key)  # a clean stop is not a death


def test_entries_of_a_dead_consumer_are_reclaimed(
    r: redis.Redis, keys: Keys, settings: Settings
) -> None:
    publish(r, keys.events, 5)
    streams.ensure_group(r, keys.events, "alert")
    assert len(streams.read_batch(r, keys.events, "alert", "dead-one", 10, None)) == 5
    handler = Echo()
    worker = StreamWorker(r, keys, settings, handler, keys.events, "alert")
    run_until(worker, lambda: r.xlen(keys.alerts) >= 5)
    assert sorted(handler.seen) == [0, 1, 2, 3, 4]
    assert worker.stats.reclaimed == 5
    assert pending_count(r, keys.events, "alert") == 0


def test_entries_of_a_live_consumer_are_left_alone(
    r: redis.Redis, keys: Keys, settings: Settings
) -> None:
    publish(r, keys.events, 2)
    streams.ensure_group(r, keys.events, "alert")
    streams.read_batch(r, keys.events, "alert", "busy", 10, None)
    r.set(keys.heartbeat("alert", "busy"), b"alive", px=10_000)
    time.sleep(settings.claim_min_idle_seconds + 0.2)
    handler = Echo()
    worker = StreamWorker(r, keys, settings, handler, keys.events, "alert")
    run_until(worker, lambda: False, timeout=1.5)
    assert handler.seen == []
    assert pending_count(r, keys.events, "alert") == 2


class DeferOnce:
    """Parks each event once (amended with an attempt counter), then accepts it."""

    stage = "alert"

    def __init__(self) -> None:
        self.calls: list[tuple[int, str | None]] = []

    def handle(self, events: Sequence[CloudEvent]) -> list[Outcome]:
        out = []
        for ev in events:
            attempt = ev.get("muttattempt")
            self.calls.append((ev.data["n"], attempt))
            if attempt is None:
                again = CloudEvent({**ev.get_attributes(), "muttattempt": "2"}, ev.data)
                out.append(Outcome.defer(again, 0.3))
            else:
                out.append(Outcome.ok())
        return out


def test_deferred_entries_come_back_after_their_delay(
    r: redis.Redis, keys: Keys, settings: Settings
) -> None:
    from shared.broker.schedule import scheduled_count

    publish(r, keys.events, 20)
    handler = DeferOnce()
    worker = StreamWorker(r, keys, settings, handler, keys.events, "alert")
    parked_seen: list[int] = []

    def done() -> bool:
        parked_seen.append(scheduled_count(r, keys.events))
        return len(handler.calls) >= 40

    started = time.monotonic()
    run_until(worker, done)
    assert time.monotonic() - started >= 0.3
    assert max(parked_seen) == 20  # all parked at once: nothing waited in line
    assert sorted(c for c in handler.calls if c[1] == "2") == [(n, "2") for n in range(20)]
    assert scheduled_count(r, keys.events) == 0
    assert pending_count(r, keys.events, "alert") == 0
    assert worker.stats.deferred == 20


@pytest.mark.timeout(120)  # a worker holding the entry would block for an hour
def test_an_entry_parked_between_two_looks_is_not_held_by_a_long_block(
    r: redis.Redis, keys: Keys, settings: Settings
) -> None:
    """Promotion is looked at every 20 ms at most; a turn that skipped the look must not
    then block for the whole worker_block_ms with an entry parked for 0.3 s.

    The block is an hour, the client has no socket timeout (redis-py's default of 5 s
    would end any block early) and nothing else is published, so the parked entry can
    only come back if the worker kept its waits short while something was parked; a
    worker that blocked for the full block would never handle it, and the test times out.
    """
    settings = settings.model_copy(update={"worker_block_ms": 3_600_000})
    assert settings.redis_url
    patient = redis.Redis.from_url(settings.redis_url, socket_timeout=None)
    publish(r, keys.events, 1)
    handler = DeferOnce()
    worker = StreamWorker(patient, keys, settings, handler, keys.events, "alert")
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        while len(handler.calls) < 2 and thread.is_alive():
            time.sleep(0.02)
    finally:
        worker.stop()
        publish(r, keys.events, 1)  # wakes a worker blocked on XREADGROUP, so it can stop
        thread.join(timeout=60)
        patient.close()
    assert handler.calls[:2] == [(0, None), (0, "2")]  # parked once, then came back
    assert not thread.is_alive()


def test_worker_recreates_its_group_after_redis_lost_the_stream(
    r: redis.Redis, keys: Keys, settings: Settings
) -> None:
    handler = Echo()
    worker = StreamWorker(r, keys, settings, handler, keys.events, "alert")
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        publish(r, keys.events, 3)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(handler.seen) < 3:
            time.sleep(0.02)
        r.delete(keys.events)  # Redis lost its data: stream and group are gone
        time.sleep(0.3)
        publish(r, keys.events, 2)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(handler.seen) < 5:
            time.sleep(0.02)
    finally:
        worker.stop()
        thread.join(timeout=10)
    assert sorted(handler.seen) == [0, 0, 1, 1, 2]
