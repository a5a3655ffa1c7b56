"""Fault: a Redis Cluster primary SIGKILLed under load; its replica is promoted.

Each test owns a fresh cluster (three primaries, a replica each,
``--cluster-node-timeout 1000``) and runs ingest and the alert, forward
and audit workers on it with six stream partitions. A few seconds into a
steady load it kills the primary holding ``{p}``: partition 0 and what every
partition shares (the ingest rate limit, the breakers, the delivered
markers), the worst one to lose.

Replication is asynchronous: what the primary acknowledged but its replica
never received is gone once the replica takes over. On one machine a
SIGKILL loses nothing of that (the kernel still delivers what the primary
had written to the replica's socket, up to tens of MB), so the second test
makes the window real: the replication link is cut for a few seconds
before the kill (the replica stopped with SIGSTOP, the primary told to drop
it with ``CLIENT KILL TYPE replica``), as a network partition between them
would, while the primary goes on acknowledging; the alert worker is
stopped with it, so a backlog of accepted, not yet processed events builds
up (events already delivered before the kill cannot be lost). It runs without and with
``ingest_wait_replicas`` 1 (``WAIT``): without, acknowledged events are
lost; with, ingest refuses what no replica confirmed, and nothing
acknowledged is lost.

After the promotion the killed node is started again (it rejoins as the new
primary's replica), as an operator or an orchestrator would: with
``ingest_wait_replicas`` 1 that shard has no replica until then, and ingest
refuses its events.
"""

from __future__ import annotations

import itertools
import signal
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from shared.broker.keys import Keys
from shared.config import Settings
from shared.dynconfig import DynamicConfig
from shared.redis_client import connect_redis
from tests.support import cluster
from tests.support.cluster import Cluster, primary_of
from tests.support.pipeline import wait_drained
from tests.support.resilience import (
    Load,
    Pipeline,
    Tally,
    report,
    sink_lines,
    tally,
)

pytestmark = pytest.mark.slow

WORKERS = ("alert", "forward", "audit")
STALL_SECONDS = 3.0


@dataclass
class Run:
    """One failover under load, measured."""

    load: Load
    counts: Tally
    fault_at: float  # monotonic: the replica stopped, or else the primary killed
    killed_at: float  # monotonic
    promoted_in: float
    redundant_in: float  # the killed node back as a replica, in sync
    stall: float  # longest gap between deliveries after the kill
    replica_behind: int  # bytes of replication stream the replica lacked at the kill

    @property
    def refused(self) -> list[float]:
        """When requests after the fault were not answered 202 (monotonic)."""
        return [a.at for a in self.load.answers if a.at >= self.fault_at and a.status != 202]

    def numbers(self) -> dict[str, object]:
        refused = self.refused
        return {
            **self.counts.numbers(),
            "requests": len(self.load.answers),
            "answers": {str(k): v for k, v in sorted(self.load.statuses.items())},
            "replica_behind_bytes_at_kill": self.replica_behind,
            "promoted_after_s": round(self.promoted_in, 1),
            "replica_back_after_s": round(self.redundant_in, 1),
            "refused_after_fault": len(refused),
            "refused_for_s": round(refused[-1] - refused[0], 1) if refused else 0.0,
            "longest_delivery_stall_s": round(self.stall, 1),
        }


def _stall(path: Path, since: float) -> float:
    """The longest gap between two deliveries (file sink ``delivered_at``) after ``since``."""
    times = sorted(
        datetime.fromisoformat(str(line["delivered_at"])).timestamp() for line in sink_lines(path)
    )
    times = [since, *(t for t in times if t >= since)]
    return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


def _offsets(nodes: Cluster, primary: int) -> tuple[int, int | None]:
    """The primary's replication offset, and what its replica acknowledged (None: no link)."""
    with nodes.node(primary).client() as c:
        info: Any = c.info("replication")
    replica = info.get("slave0")
    return int(info["master_repl_offset"]), int(replica["offset"]) if replica else None


def _fail_over(settings: Settings, tmp_path: Path, *, stall: bool, wait_replicas: int) -> Run:
    """Load, (stop the replica,) kill the ``{p}`` primary, wait for the promotion, count."""
    if not cluster.available():
        pytest.skip(f"needs {cluster.SERVER} and {cluster.CLI} (the redis-server package)")
    nodes = Cluster(tmp_path / "cluster").start()
    own = settings.model_copy(update={"redis_url": nodes.url, "partitions": 6})
    keys = Keys(own.namespace, partitions=own.partitions)
    rc: redis.Redis = connect_redis(nodes.url)
    dyn = DynamicConfig(rc, keys.config)
    dyn.set("forward_rate_limit", "5000")
    dyn.set("ingest_wait_replicas", str(wait_replicas))
    dyn.set("ingest_wait_timeout_ms", "500")
    pipeline = Pipeline(own, tmp_path / "logs")
    try:
        url = pipeline.ingest()
        pipeline.workers(*WORKERS)
        load = Load(url, batch=40, interval=0.05, max_requests=400, max_seconds=90)
        load.start()
        time.sleep(3)
        victim = primary_of(nodes, keys.ingest_rate_limit)
        paused = [nodes.replica_of(victim).proc, pipeline.procs["alert"]] if stall else []
        fault_at = time.monotonic()
        for proc in paused:
            assert proc is not None
            proc.send_signal(signal.SIGSTOP)
        _, confirmed = _offsets(nodes, victim)
        if stall:
            with nodes.node(victim).client() as c:
                c.client_kill_filter(_type="replica")  # the link is cut: nothing more is sent
            time.sleep(STALL_SECONDS)
        written, now_confirmed = _offsets(nodes, victim)
        behind = written - (now_confirmed if now_confirmed is not None else confirmed or 0)
        killed_at, killed_wall = time.monotonic(), time.time()
        nodes.node(victim).kill()
        for proc in paused:
            assert proc is not None
            proc.send_signal(signal.SIGCONT)
        promoted_in = nodes.wait_promoted(victim)
        nodes.node(victim).start()  # back, as the new primary's replica
        nodes.wait_healthy()
        redundant_in = time.monotonic() - killed_at
        load.join(timeout=120)
        load.stop()
        for name in WORKERS:
            assert pipeline.running(name), f"{name} died in the failover\n{pipeline.tail()}"
        wait_drained(rc, keys, timeout=120)  # then nothing more can arrive at the sink
        run = Run(
            load,
            tally(own.sink_path, load.accepted, load.sent),
            fault_at,
            killed_at,
            promoted_in,
            redundant_in,
            _stall(own.sink_path, killed_wall),
            behind,
        )
        assert set(load.statuses) <= {202, 503}, load.statuses  # never a 500, never a hang
        assert all(a.retry_after for a in load.answers if a.status == 503)
        after = [
            i
            for a in load.answers
            if a.status == 202 and a.at > killed_at + redundant_in
            for i in a.event_ids
        ]
        seen = {str(line["alert"]["event_id"]) for line in sink_lines(own.sink_path)}
        assert after and set(after) <= seen  # after the failover everything accepted arrives
        return run
    finally:
        pipeline.stop_all()
        rc.close()
        nodes.stop()


@pytest.mark.usefixtures("demo_rules")
def test_a_primary_killed_under_load_fails_over(settings: Settings, tmp_path: Path) -> None:
    run = _fail_over(settings, tmp_path, stall=False, wait_replicas=0)
    report("cluster primary SIGKILLed under load, replica promoted", **run.numbers())
    assert run.counts.delivered > 0


@pytest.mark.usefixtures("demo_rules")
@pytest.mark.parametrize("wait_replicas", [0, 1], ids=["async", "wait-1-replica"])
def test_a_cut_off_replica_loses_acknowledged_events_unless_ingest_waits(
    settings: Settings, tmp_path: Path, wait_replicas: int
) -> None:
    run = _fail_over(settings, tmp_path, stall=True, wait_replicas=wait_replicas)
    report(
        f"cluster primary SIGKILLed {STALL_SECONDS:g} s after its replica was cut off,"
        f" ingest_wait_replicas={wait_replicas}",
        **run.numbers(),
    )
    if wait_replicas:
        assert run.counts.lost == 0  # nothing acknowledged without a replica's copy
        assert run.refused, "the stalled replica never made ingest refuse"
