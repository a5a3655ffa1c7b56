"""Fault 1: alert and forward workers SIGKILLed at random points, again and again.

Events flow through the real processes (ingest over HTTP, the alert, forward
and audit workers) while a seeded random schedule kills a worker with SIGKILL
every 0.3-2.0 s, at the first moment after that delay when the worker holds a
batch (read, not yet settled), and starts a fresh one in its place. Each
forward worker is also armed with a failpoint that SIGKILLs it right after a
random Nth vendor write, before its delivered marker and acknowledgement (the
worst moment). A killed worker's unsettled batch stays pending until its
heartbeat expires; the next consumer reclaims it. Every accepted event must
reach the file sink exactly once (the alert id is deterministic, and the sink
and the delivered markers recognise a redelivery), and have exactly one audit
row.
"""

from __future__ import annotations

import os
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pg8000.native
import pytest
import redis

from shared.broker import streams
from shared.broker.keys import Keys
from shared.config import Settings
from shared.dynconfig import DynamicConfig
from shared.envelope import FIELD, decode
from tests.support.resilience import (
    Load,
    Pipeline,
    consumer_of,
    delivered_all,
    report,
    tally,
    wait_until,
)

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("MUTT_RESILIENCE_SEED", "20251123"))
KILLS = 6
BATCHES, BATCH = 80, 50  # 4000 events, posted over 8-15 s


@dataclass(frozen=True)
class Kill:
    stage: str
    how: str  # SIGKILL from the test, or the failpoint
    pending: int  # entries the dead consumer had read and not settled


@pytest.mark.usefixtures("demo_rules")
def test_random_sigkills_of_alert_and_forward_lose_and_double_nothing(
    settings: Settings, r: redis.Redis, keys: Keys, pg: pg8000.native.Connection, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    # Paced: forward stays busy (and parks what waits) through the kills.
    DynamicConfig(r, keys.config).set("forward_rate_limit", "300")
    pipeline = Pipeline(settings, tmp_path / "logs", MUTT_WORKER_BATCH_SIZE="50")
    kills: list[Kill] = []
    names: dict[str, str] = {}

    def fresh(stage: str, armed: bool = True) -> None:
        """A new consumer (new name); forward ones die by themselves after a random write."""
        if stage == "forward" and armed:
            point = f"forward.after_deliver={rng.randint(100, 1200)}"
            proc = pipeline.start(stage, "worker", stage, MUTT_FAILPOINTS=point)
        else:
            proc = pipeline.start(stage, "worker", stage)
        names[stage] = consumer_of(r, keys, stage, proc.pid)

    def pending(stage: str) -> int:
        stream = keys.events if stage == "alert" else keys.alerts
        rows = r.xpending_range(stream, stage, "-", "+", 100_000, consumername=names[stage])
        return len(rows)

    def died(stage: str, how: str) -> None:
        kills.append(Kill(stage, how, pending(stage)))

    def revive() -> None:
        for stage in ("alert", "forward"):
            if not pipeline.running(stage):
                died(stage, "failpoint")
                fresh(stage, armed=False)

    try:
        url = pipeline.ingest()
        pipeline.workers("audit")
        fresh("alert")
        fresh("forward")
        load = Load(url, batch=BATCH, interval=0.1, max_requests=BATCHES, max_seconds=90).start()
        victims = ["alert", "forward"] * (KILLS // 2)
        rng.shuffle(victims)
        for victim in victims:
            time.sleep(rng.uniform(0.3, 2.0))
            # Then strike while it holds a batch, if it takes one within a second.
            wait_until(lambda v=victim: pending(v) > 0, timeout=1.0, interval=0.002)
            how = "SIGKILL" if pipeline.running(victim) else "failpoint"
            pipeline.kill(victim)
            died(victim, how)
            fresh(victim)
        load.join(timeout=120)
        assert load.statuses == {202: BATCHES}, load.statuses
        accepted = load.accepted
        sink = settings.sink_path
        done = delivered_all(sink, accepted)
        assert wait_until(lambda: revive() or done(), timeout=120), pipeline.tail()
        assert streams.wait_drained(
            r, [(keys.events, "alert"), (keys.alerts, "forward"), (keys.audit, "audit")], 60
        ), pipeline.tail()
        counts = tally(sink, accepted, load.sent)
        rows = pg.run(
            "SELECT event_id::text, count(*) FROM event_audit_log"
            " WHERE event_id = ANY(CAST(:ids AS uuid[])) GROUP BY event_id",
            ids=sorted(accepted),
        )
        audit = {str(e): int(n) for e, n in rows}
        reclaimed = sum(
            int(n)
            for log in (tmp_path / "logs").glob("*.log")
            for n in re.findall(rb"reclaimed (\d+) entries from dead consumer", log.read_bytes())
        )
        recognised = sum(
            decode(f[FIELD]).data["outcome"] == "duplicate" for _, f in r.xrange(keys.delivered)
        )
        report(
            "worker SIGKILL (alert and forward, random points)",
            **counts.numbers(),
            kills=len(kills),
            mid_batch_kills=sum(1 for k in kills if k.pending),
            entries_in_flight_at_kills=sum(k.pending for k in kills),
            kill_log=[f"{k.stage}:{k.how}:{k.pending}" for k in kills],
            seed=SEED,
            reclaimed_entries=reclaimed,
            redeliveries_recognised=recognised,
            audit_rows=sum(audit.values()),
            audit_doubled=sum(1 for n in audit.values() if n > 1),
        )
        assert counts.lost == 0
        assert counts.duplicated == 0
        assert counts.delivered == len(accepted) == BATCHES * BATCH
        assert len(audit) == len(accepted)  # every event audited...
        assert set(audit.values()) == {1}  # ...once
        assert len(kills) >= KILLS
        assert any(k.pending for k in kills)  # at least one death left a batch half done
    finally:
        pipeline.stop_all()
