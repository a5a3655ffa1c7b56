"""Timers through the real stream worker: parked with the batch, promoted when due, handled."""

from __future__ import annotations

import time
from typing import Any

import redis

from mutt.runtime.worker import StreamWorker
from shared.broker import streams
from shared.broker.keys import Keys
from shared.config import Settings
from shared.envelope import FIELD, decode, encode
from shared.models import Alert
from tests.alert.correlation.conftest import Stage


def test_storm_summary_arrives_through_the_worker(
    stage: Stage, settings: Settings, keys: Keys, r: redis.Redis
) -> None:
    stage.set(storm_host_per_minute=2)
    # 2.5 s before the summary of this minute is due (the end of the minute + 2 s grace)
    stage.clock.now = (int(stage.clock.now) // 60 + 1) * 60 - 0.5
    events = [stage.event(f"disk failed in slot {n}") for n in range(5)]
    streams.publish(r, keys.events, [{FIELD: encode(e)} for e in events])
    worker = StreamWorker(r, keys, settings, stage.handler, keys.events, "alert")
    streams.ensure_group(r, keys.events, "alert")

    raised: list[Alert] = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and len(raised) < 3:
        worker.run_once()
        entries: Any = r.xrange(keys.alerts)
        raised = [Alert.model_validate(decode(f[FIELD]).data) for _, f in entries]
    assert [a.rule_id for a in raised] == [stage.rules["disk failed"]] * 2 + ["storm"]
    assert "3 alerts suppressed" in raised[2].summary
    assert worker.stats.deferred == 1
