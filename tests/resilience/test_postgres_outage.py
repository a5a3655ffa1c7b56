"""Fault 3: PostgreSQL stopped for OUTAGE_SECONDS (15 s) under load, then started again.

The test owns this PostgreSQL (pgserver in a temporary directory). While it
is down, alerting must go on from the rule cache: alerts for events accepted
during the outage reach the sink before PostgreSQL is back. The rules
version is bumped in the middle of the outage, so every alert instance
really tries to reload, fails, and keeps serving its last good snapshot.
The audit stage leaves its batches pending meanwhile; once PostgreSQL is
back every accepted event has exactly one row in ``event_audit_log``.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
import redis
import yaml

from functions.alert.cache import bump_version
from functions.alert.catalog import insert_catalog, parse_catalog
from mutt.db.migrate import migrate
from mutt.embedded import EmbeddedPostgres
from shared.broker import streams
from shared.broker.keys import Keys
from shared.config import Settings
from shared.db.connection import connect_pg
from shared.dynconfig import DynamicConfig
from tests.support.resilience import (
    Load,
    Pipeline,
    consumer_of,
    delivered_all,
    report,
    sink_lines,
    tally,
    wait_until,
)

pytestmark = pytest.mark.slow

OUTAGE_SECONDS = 15.0


@pytest.fixture
def own_postgres() -> Iterator[tuple[EmbeddedPostgres, Path]]:
    base = Path(tempfile.mkdtemp(prefix="mutt-pg-"))  # short: the socket lives under it
    server = EmbeddedPostgres(base)
    yield server, base
    server.stop()
    shutil.rmtree(base, ignore_errors=True)


def audit_counts(url: str, schema: str, ids: set[str]) -> dict[str, int]:
    conn = connect_pg(url, schema)
    try:
        rows = conn.run(
            "SELECT event_id::text, count(*) FROM event_audit_log"
            " WHERE event_id = ANY(CAST(:ids AS uuid[])) GROUP BY event_id",
            ids=sorted(ids),
        )
    finally:
        conn.close()
    return {str(e): int(n) for e, n in rows}


def test_postgres_outage_alerting_goes_on_and_audit_catches_up(
    settings: Settings,
    r: redis.Redis,
    keys: Keys,
    tmp_path: Path,
    own_postgres: tuple[EmbeddedPostgres, Path],
) -> None:
    pg_server, base = own_postgres
    url = pg_server.start()
    own = settings.model_copy(update={"database_url": url})
    conn = connect_pg(url, own.database_schema)
    migrate(conn)
    demo = resources.files("mutt.demo_data").joinpath("rules.yaml").read_text()
    insert_catalog(conn, r, own.namespace, parse_catalog(yaml.safe_load(demo)))
    conn.close()
    DynamicConfig(r, keys.config).set("forward_rate_limit", "5000")
    pipeline = Pipeline(own, tmp_path / "logs")
    try:
        ingest = pipeline.ingest()
        pipeline.workers("alert", "forward")
        pipeline.start("audit", "worker", "audit", MUTT_WORKER_BATCH_SIZE="500")
        stages = ("alert", "forward", "audit")
        for name in stages:
            consumer_of(r, keys, name, pipeline.procs[name].pid)
        load = Load(ingest, batch=20, interval=0.1, max_requests=200, max_seconds=26).start()
        time.sleep(3)
        pg_server.stop()
        down = time.monotonic()
        time.sleep(OUTAGE_SECONDS / 2)
        bump_version(r, own.namespace)  # every alert instance now tries to reload, and fails
        time.sleep(OUTAGE_SECONDS / 2)
        # Just before PostgreSQL returns: what reached the sink meanwhile.
        up = time.monotonic()
        during = {i for a in load.answers if down < a.at < up for i in a.event_ids}
        in_sink = {str(x["alert"]["event_id"]) for x in sink_lines(own.sink_path)}  # type: ignore[index]
        delivered_during = len(during & in_sink)
        pipeline.check(*stages)
        pg_server = EmbeddedPostgres(base)
        assert pg_server.start() == url
        load.join(timeout=60)
        load.stop()

        accepted = load.accepted
        done = delivered_all(own.sink_path, accepted)
        assert wait_until(lambda: pipeline.check(*stages) or done(), 90), pipeline.tail()
        assert streams.wait_drained(
            r, [(keys.events, "alert"), (keys.alerts, "forward"), (keys.audit, "audit")], 90
        ), pipeline.tail()
        counts = tally(own.sink_path, accepted, load.sent)
        audit = audit_counts(url, own.database_schema, accepted)
        logs = b"".join(p.read_bytes() for p in (tmp_path / "logs").glob("*.log"))
        report(
            f"PostgreSQL stopped {OUTAGE_SECONDS:.0f} s under load",
            **counts.numbers(),
            accepted_during_outage=len(during),
            delivered_during_outage=delivered_during,
            audit_rows=sum(audit.values()),
            audit_missing=len(accepted - set(audit)),
            audit_doubled=sum(1 for n in audit.values() if n > 1),
            failed_rule_reloads_logged=logs.count(b"rule reload failed"),
            audit_retries_logged=logs.count(b"audit write failed"),
        )
        assert set(load.statuses) == {202}, load.statuses  # ingest never needs PostgreSQL
        assert during, "no event was accepted during the outage"
        assert delivered_during > 0  # alerting went on from the rule cache
        assert b"rule reload failed" in logs  # ...and it was the cache serving, by design
        assert b"audit write failed" in logs  # the audit stage did meet the outage
        assert counts.lost == 0
        assert counts.duplicated == 0
        assert counts.delivered == len(accepted)
        assert set(audit) == accepted  # every event audited after recovery...
        assert set(audit.values()) == {1}  # ...exactly once
    finally:
        pipeline.stop_all()
        pg_server.stop()
