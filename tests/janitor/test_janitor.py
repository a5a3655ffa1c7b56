"""The janitor's tasks against real Redis and PostgreSQL."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pg8000.native
import pytest
import redis

from functions.audit.writer import AuditRow, write_rows
from functions.janitor import partitions, retention
from functions.janitor.handler import JanitorHandler
from mutt.db.migrate import migrate
from mutt.runtime.worker import StreamWorker
from shared.broker import streams
from shared.broker.keys import Keys
from shared.config import Settings
from shared.context import Context
from shared.db.connection import connect_pg
from shared.envelope import FIELD, encode
from tests.support.factories import alert_event


@pytest.fixture
def fresh_db(servers: tuple[str, str]) -> Iterator[pg8000.native.Connection]:
    schema = f"j_{uuid.uuid4().hex[:10]}"
    conn = connect_pg(servers[1], schema)
    migrate(conn)
    yield conn
    conn.run(f'DROP SCHEMA "{schema}" CASCADE')
    conn.close()


def audit_row(when: datetime) -> AuditRow:
    return AuditRow(
        uuid.uuid4(), when, when, "h", 1, "Ignore", "prod", "NETO", 3, False, None, {"m": 1}
    )


def where(conn: pg8000.native.Connection) -> list[str]:
    return [
        str(r[0])
        for r in conn.run(
            "SELECT tableoid::regclass::text FROM event_audit_log ORDER BY event_time"
        )
    ]


def publish_alerts(r: redis.Redis, keys: Keys, n: int) -> None:
    streams.publish(r, keys.alerts, [{FIELD: encode(alert_event(i))} for i in range(n)])


def test_reclaim_republishes_a_dead_consumers_work_and_it_is_delivered_once(
    r: redis.Redis, keys: Keys, settings: Settings, ctx: Context
) -> None:
    publish_alerts(r, keys, 20)
    streams.ensure_group(r, keys.alerts, "forward")
    assert len(streams.read_batch(r, keys.alerts, "forward", "crashed", 100, None)) == 20
    time.sleep(settings.claim_min_idle_seconds + 0.1)
    report = JanitorHandler(ctx).run("reclaim")
    assert report.results["reclaim"]["republished"] == {"forward": 20}
    assert r.xpending(keys.alerts, "forward")["pending"] == 0
    from functions.forward.handler import make_forward_handler

    worker = StreamWorker(r, keys, settings, make_forward_handler(ctx), keys.alerts, "forward")
    thread = threading.Thread(target=worker.run)
    thread.start()
    assert streams.wait_drained(r, [(keys.alerts, "forward")], timeout=20)
    worker.stop()
    thread.join()
    lines = settings.sink_path.read_text().splitlines()
    assert len(lines) == 20


def test_a_poison_entry_reaches_the_dlq_after_max_deliveries(
    r: redis.Redis, keys: Keys, settings: Settings, ctx: Context
) -> None:
    settings = settings.model_copy(update={"max_deliveries": 3})
    ctx = Context(settings)
    publish_alerts(r, keys, 1)
    streams.ensure_group(r, keys.alerts, "forward")
    for _ in range(3):  # a consumer takes it and dies, again and again
        assert (
            len(streams.read_batch(r, keys.alerts, "forward", f"c{uuid.uuid4().hex[:4]}", 10, None))
            == 1
        )
        time.sleep(settings.claim_min_idle_seconds + 0.1)
        JanitorHandler(ctx).run("reclaim")
    assert r.xlen(keys.dlq("forward")) == 0
    streams.read_batch(r, keys.alerts, "forward", "last", 10, None)
    time.sleep(settings.claim_min_idle_seconds + 0.1)
    report = JanitorHandler(ctx).run("reclaim")
    assert report.results["reclaim"]["dead_lettered"] == {"forward": 1}
    ((_, fields),) = r.xrange(keys.dlq("forward"))
    assert fields[b"dlq_deliveries"] == b"4"
    assert b"after 4 deliveries" in fields[b"dlq_reason"]
    assert r.xpending(keys.alerts, "forward")["pending"] == 0


def test_partitions_are_created_ahead_and_default_rows_moved(
    fresh_db: pg8000.native.Connection,
) -> None:
    now = datetime.now(UTC)
    far = now.replace(day=1, year=now.year + 1)
    write_rows(fresh_db, [audit_row(far), audit_row(far)])
    assert where(fresh_db)[0].endswith("event_audit_log_default")
    report = partitions.run(fresh_db, months_ahead=3, retention_days=90)
    assert report.moved_rows == 2
    assert report.default_rows == 0
    assert all(p.endswith(far.strftime("event_audit_log_%Y_%m")) for p in where(fresh_db))
    assert report.months_ahead >= 3
    again = partitions.run(fresh_db, months_ahead=3, retention_days=90)  # idempotent
    assert (again.created, again.moved_rows) == ([], 0)


def test_retention_drops_old_partitions_and_nothing_newer(
    fresh_db: pg8000.native.Connection,
) -> None:
    fresh_db.run("SELECT mutt_ensure_audit_partition('2020-01-01')")
    now = datetime.now(UTC)
    write_rows(
        fresh_db,
        [
            audit_row(datetime(2020, 1, 15, tzinfo=UTC)),
            audit_row(now),
            audit_row(datetime(2019, 6, 1, tzinfo=UTC)),
        ],
    )
    kept_before = [p for p in partitions.partitions(fresh_db) if p != "event_audit_log_2020_01"]
    report = retention.RetentionReport()
    retention.audit(fresh_db, 90, "drop", report)
    assert report.dropped == ["event_audit_log_2020_01"]
    assert report.default_rows_deleted == 1  # the 2019 row had no partition
    assert partitions.partitions(fresh_db) == kept_before
    assert len(where(fresh_db)) == 1  # today's row is still there


def test_retention_can_detach_instead_of_drop(fresh_db: pg8000.native.Connection) -> None:
    fresh_db.run("SELECT mutt_ensure_audit_partition('2020-02-01')")
    write_rows(fresh_db, [audit_row(datetime(2020, 2, 3, tzinfo=UTC))])
    report = retention.RetentionReport()
    retention.audit(fresh_db, 90, "detach", report)
    assert report.detached == ["archived_event_audit_log_2020_02"]
    assert fresh_db.run("SELECT count(*) FROM archived_event_audit_log_2020_02")[0][0] == 1


def test_trimming_never_removes_a_pending_or_unread_entry(r: redis.Redis, keys: Keys) -> None:
    publish_alerts(r, keys, 30)
    streams.ensure_group(r, keys.alerts, "forward")
    batch = streams.read_batch(r, keys.alerts, "forward", "c", 10, None)
    r.xack(keys.alerts, "forward", *[e.id for e in batch[:4]])  # 4 done, 6 pending, 20 unread
    report = retention.RetentionReport()
    now = int(time.time() * 1000) + 3_600_000
    retention.trim_streams(r, [keys.alerts], keep_minutes=0, now_ms=now, report=report)
    assert report.trimmed == {keys.alerts: 4}
    assert r.xlen(keys.alerts) == 26
    pending = r.xpending_range(keys.alerts, "forward", "-", "+", 100)
    assert len(pending) == 6
    assert len(streams.read_batch(r, keys.alerts, "forward", "c", 100, None)) == 20


def test_replay_moves_transient_dead_letters_back_once_the_sink_is_healthy(
    r: redis.Redis, keys: Keys, settings: Settings, ctx: Context
) -> None:
    from cloudevents.http import CloudEvent

    from shared.envelope import decode

    def dead(i: int, reason: bytes, sink: str = "file") -> dict[bytes, bytes]:
        ce = alert_event(i)
        aimed = CloudEvent({**ce.get_attributes(), "muttsinks": sink, "muttattempt": "10"}, ce.data)
        return {FIELD: encode(aimed), b"dlq_reason": reason}

    r.xadd(keys.dlq("forward"), dead(1, b"gave up after 10 attempts at file: 503"))
    r.xadd(keys.dlq("forward"), dead(2, b"permanent failure at file: HTTP 400"))
    report = JanitorHandler(ctx).run("replay")
    assert report.results["replay"]["replayed"] == {"file": 1}
    assert report.results["replay"]["permanent"] == 1
    assert r.xlen(keys.dlq("forward")) == 1
    ((_, fields),) = r.xrange(keys.alerts)
    replayed = decode(fields[FIELD])
    assert replayed.get("muttsinks") == "file"
    assert replayed.get("muttattempt") is None  # a fresh attempt budget

    # A sink whose breaker is open keeps its dead letters until it is not.
    r.hset(keys.breaker("pagerduty"), "state", "open")
    r.xadd(
        keys.dlq("forward"), dead(3, b"gave up after 10 attempts at pagerduty: 503", "pagerduty")
    )
    report = JanitorHandler(ctx).run("replay")
    assert report.results["replay"]["waiting"] == {"pagerduty": 1}
    assert report.results["replay"]["replayed"] == {}
    r.hset(keys.breaker("pagerduty"), "state", "closed")
    report = JanitorHandler(ctx).run("replay")
    assert report.results["replay"]["replayed"] == {"pagerduty": 1}, report


def test_replays_at_once_publish_each_dead_letter_once(
    r: redis.Redis, keys: Keys, settings: Settings
) -> None:
    """The janitor and an operator replaying together: the race-free script decides."""
    from shared.broker.dlq import Selection, replay

    for i in range(300):
        r.xadd(keys.dlq("forward"), {FIELD: encode(alert_event(i)), b"dlq_reason": b"x"})
    barrier = threading.Barrier(4)
    results = []

    def run() -> None:
        client = redis.Redis.from_url(str(settings.redis_url))
        barrier.wait()
        results.append(replay(client, keys, Selection(stages=("forward",))))
        client.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(x.replayed for x in results) == 300
    assert r.xlen(keys.alerts) == 300  # each once, never twice
    assert r.xlen(keys.dlq("forward")) == 0


def test_concurrent_janitors_do_not_double_act(
    r: redis.Redis, keys: Keys, settings: Settings, ctx: Context
) -> None:
    publish_alerts(r, keys, 200)
    streams.ensure_group(r, keys.alerts, "forward")
    streams.read_batch(r, keys.alerts, "forward", "crashed", 500, None)
    time.sleep(settings.claim_min_idle_seconds + 0.1)
    reports = []
    barrier = threading.Barrier(2)

    def run() -> None:
        barrier.wait()
        reports.append(JanitorHandler(Context(settings)).run("reclaim"))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    republished = sum(
        x.results.get("reclaim", {}).get("republished", {}).get("forward", 0) for x in reports
    )
    assert republished == 200
    assert r.xlen(keys.alerts) == 400  # 200 originals (acked) + 200 copies, never 600
    assert r.xpending(keys.alerts, "forward")["pending"] == 0
