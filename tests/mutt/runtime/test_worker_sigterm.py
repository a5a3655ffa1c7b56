"""SIGTERM mid-load: the worker finishes its batch, acknowledges, exits; nothing lost or pending."""

from __future__ import annotations

import signal
import subprocess
import time

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
N = 3000


def test_sigterm_mid_load_loses_nothing_and_leaves_nothing_pending(
    r: redis.Redis, keys: Keys, settings: Settings
) -> None:
    DynamicConfig(r, keys.config).set("forward_rate_limit", "0")
    streams.publish(r, keys.alerts, [{FIELD: encode(alert_event(i))} for i in range(N)])
    env = {**settings_env(settings), "MUTT_WORKER_BATCH_SIZE": "50"}
    worker = subprocess.Popen(mutt("worker", "forward"), env=env)
    sink = settings.sink_path
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (
        not sink.exists() or len(sink.read_bytes().splitlines()) < 200
    ):
        time.sleep(0.01)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0  # a clean exit within the grace period
    assert r.xpending(keys.alerts, "forward")["pending"] == 0  # the batch in hand was settled
    delivered = len(sink.read_bytes().splitlines())
    assert delivered < N  # it really stopped mid-load

    rest = subprocess.Popen(mutt("worker", "forward"), env=env)
    try:
        assert streams.wait_drained(r, [(keys.alerts, "forward")], timeout=60)
    finally:
        rest.send_signal(signal.SIGTERM)
        assert rest.wait(timeout=30) == 0
    ids = [orjson.loads(x)["alert_id"] for x in sink.read_bytes().splitlines()]
    assert sorted(ids) == sorted(str(alert(i).alert_id) for i in range(N))  # all, once each
