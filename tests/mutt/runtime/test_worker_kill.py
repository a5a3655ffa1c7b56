"""A worker killed with SIGKILL mid-batch loses nothing and delivers nothing twice."""

from __future__ import annotations

import signal
import subprocess

import orjson
import pytest
import redis

from shared.broker import streams
from shared.broker.keys import Keys
from shared.config import Settings
from shared.dynconfig import DynamicConfig
from shared.envelope import FIELD, encode
from tests.support.factories import alert, alert_event
from tests.support.processes import mutt, settings_env

pytestmark = pytest.mark.slow

N = 300


def test_sigkill_mid_batch_then_another_consumer_delivers_exactly_once(
    r: redis.Redis, keys: Keys, settings: Settings
) -> None:
    streams.publish(r, keys.alerts, [{FIELD: encode(alert_event(i))} for i in range(N)])
    DynamicConfig(r, keys.config).set("forward_rate_limit", "0")  # measure recovery, not pacing
    env = settings_env(settings)
    env["MUTT_WORKER_BATCH_SIZE"] = "100"
    # Die on the 137th delivery: batch 1 (100) is settled, batch 2 is 37 deep.
    doomed = subprocess.Popen(
        mutt("worker", "forward"), env={**env, "MUTT_FAILPOINTS": "forward.after_deliver=137"}
    )
    assert doomed.wait(timeout=60) == -signal.SIGKILL
    sink = settings.sink_path
    assert len(sink.read_bytes().splitlines()) == 137
    pending = r.xpending(keys.alerts, "forward")
    assert pending["pending"] == 100  # the whole unsettled batch is still pending
    (dead,) = [c for c in pending["consumers"] if c["pending"]]

    rescuer = subprocess.Popen(mutt("worker", "forward"), env=env)
    try:
        assert streams.wait_drained(r, [(keys.alerts, "forward")], timeout=60)
    finally:
        rescuer.terminate()
        assert rescuer.wait(timeout=30) == 0
    lines = [orjson.loads(x) for x in sink.read_bytes().splitlines()]
    ids = [x["alert_id"] for x in lines]
    assert len(ids) == N
    assert len(set(ids)) == N  # none twice
    expected = {str(alert(i).alert_id) for i in range(N)}
    assert set(ids) == expected  # none lost
    outcomes = [orjson.loads(f[FIELD])["data"]["outcome"] for _, f in r.xrange(keys.delivered)]
    # One report per alert: the 37 written before the kill are recognised on
    # redelivery and reported as duplicates instead of being written again.
    assert len(outcomes) == N
    assert outcomes.count("duplicate") == 37
    assert dead["name"] not in {c["name"] for c in r.xinfo_consumers(keys.alerts, "forward")}
