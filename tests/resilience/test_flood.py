"""Fault 5: a flood at several times capacity against ``mutt serve ingest``.

Capacity is set low on purpose: ``ingest_rate_limit`` RATE events per second
and ``ingest_max_pending`` 1000 (the smallest allowed). THREADS senders post
batches as fast as they can, plus one sender of oversized bodies: first for
PHASE_SECONDS with no consumer (the backlog builds up past the limit), then
for PHASE_SECONDS more once the workers consume.
Ingest must push back with 429 (rate) and 503 (backlog), each with a
Retry-After, never fail otherwise; its memory must stay bounded (VmRSS of
the gunicorn master and worker before and after); and every event it
acknowledged with a 2xx must be delivered, once.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
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
    consumer_of,
    delivered_all,
    ingest_pid,
    report,
    rss_kb,
    tally,
    wait_until,
)

pytestmark = pytest.mark.slow

RATE = 300  # events per second admitted by ingest
THREADS = 6
BATCH = 20
PHASE_SECONDS = 6.0  # flood without consumers, then as long again with them
RSS_GROWTH_LIMIT_KB = 150 * 1024  # generous: a leak or a queue of bodies would blow through it


def oversized(url: str, stop: threading.Event, answers: Counter[int]) -> None:
    """2 MiB bodies (limit 1 MiB): announced by Content-Length, and streamed without one."""
    blob = b"[" + b'"x",' * (512 * 1024) + b'"x"]'
    with requests.Session() as session:
        for n in range(200):
            if stop.is_set():
                return
            chunks = [blob[i : i + 65536] for i in range(0, len(blob), 65536)]
            data = blob if n % 2 else iter(chunks)
            try:
                resp = session.post(
                    url + "/api/v2/ingest",
                    data=data,
                    headers={"content-type": "application/json"},
                    timeout=15,
                )
                answers[resp.status_code] += 1
            except requests.RequestException:
                answers[0] += 1
            stop.wait(0.05)


@pytest.mark.usefixtures("demo_rules")
def test_flood_is_pushed_back_memory_stays_bounded_and_every_2xx_is_delivered(
    settings: Settings, r: redis.Redis, keys: Keys, tmp_path: Path
) -> None:
    dyn = DynamicConfig(r, keys.config)
    dyn.set("ingest_rate_limit", str(RATE))
    dyn.set("ingest_rate_window_ms", "1000")
    dyn.set("ingest_max_pending", "1000")
    dyn.set("forward_rate_limit", "5000")
    pipeline = Pipeline(settings, tmp_path / "logs")
    try:
        url = pipeline.ingest()
        pids = ingest_pid(pipeline.procs["ingest"])
        warm = Load(url, batch=BATCH, interval=0.2, max_requests=5, max_seconds=10).start()
        warm.join(timeout=30)
        time.sleep(1.5)  # the warm-up's admissions leave the rate window
        before = rss_kb(pids)
        floods = [
            Load(url, batch=BATCH, interval=0.0, max_requests=3000, max_seconds=60)
            for _ in range(THREADS)
        ]
        stop = threading.Event()
        big: Counter[int] = Counter()
        big_sender = threading.Thread(target=oversized, args=(url, stop, big), daemon=True)
        started = time.monotonic()
        for load in floods:
            load.start()
        big_sender.start()
        peak = before
        drain_from = None  # when the workers were consuming
        for _ in range(400):  # phase 1: no consumer, the backlog builds; phase 2: drains
            peak = max(peak, rss_kb(pids))
            elapsed = time.monotonic() - started
            if drain_from is None and elapsed > PHASE_SECONDS:
                pipeline.workers("alert", "forward", "audit")
                for stage in ("alert", "forward", "audit"):
                    consumer_of(r, keys, stage, pipeline.procs[stage].pid)
                drain_from = time.monotonic()
            if drain_from is not None and time.monotonic() - drain_from > PHASE_SECONDS:
                break
            time.sleep(0.25)
        for load in floods:
            load.stop()
        stop.set()
        big_sender.join(timeout=60)
        flood_seconds = time.monotonic() - started
        after = rss_kb(pids)
        health = requests.get(url + "/healthz", timeout=10).status_code

        answers = [a for load in floods for a in load.answers]
        statuses = Counter(a.status for a in answers)
        accepted = {i for load in floods for i in load.accepted}
        sent = sum(load.sent for load in floods)
        sink = settings.sink_path
        done = delivered_all(sink, accepted)
        assert wait_until(lambda: pipeline.check("alert", "forward") or done(), 90), pipeline.tail()
        assert streams.wait_drained(r, [(keys.events, "alert"), (keys.alerts, "forward")], 60)
        counts = tally(sink, accepted, sent)
        report(
            f"flood: {THREADS} senders for 2 x {PHASE_SECONDS:.0f} s against {RATE} events/s,"
            " max pending 1000",
            **counts.numbers(),
            offered_per_second=round(sent / flood_seconds),
            capacity_per_second=RATE,
            answers={str(k): v for k, v in sorted(statuses.items())},
            accepted_once_consumed=sum(
                len(a.event_ids) for a in answers if drain_from and a.at > drain_from
            ),
            oversized_answers={str(k): v for k, v in sorted(big.items())},
            rss_kb_before=before,
            rss_kb_peak=peak,
            rss_kb_after=after,
        )
        assert health == 200
        assert pipeline.running("ingest")
        assert set(statuses) <= {202, 429, 503}, statuses  # pushed back, never failed
        assert statuses[429] > 0 and statuses[503] > 0  # both kinds of pressure tripped
        assert all(a.retry_after for a in answers if a.status in (429, 503))
        assert set(big) == {413}, big
        assert after - before < RSS_GROWTH_LIMIT_KB, (before, after)
        assert peak - before < RSS_GROWTH_LIMIT_KB, (before, peak)
        assert counts.lost == 0
        assert counts.duplicated == 0
        assert counts.delivered == len(accepted) > 0
    finally:
        pipeline.stop_all()
