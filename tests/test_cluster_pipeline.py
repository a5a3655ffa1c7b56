"""The whole pipeline on a real Redis Cluster with six stream partitions, end to end.

Through ``mutt run`` (external servers) and through the Knative path
(``mutt serve`` functions fed by ``mutt relay``): every event raises its
alert, delivered exactly once, audited once, and the partitions' streams
sit on every primary of the cluster.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pg8000.native
import pytest
import redis

from shared.broker.keys import Keys
from shared.config import Settings
from tests.support.cluster import Cluster, primary_of
from tests.support.pipeline import (
    Processes,
    audit_rows,
    send,
    sink,
    wait_delivered,
    wait_drained,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def parted(cluster_settings: Settings) -> Settings:
    assert cluster_settings.partitions == 6
    return cluster_settings.model_copy(update={"ingest_cloudevents_batch": True})


@pytest.fixture
def procs(parted: Settings) -> Iterator[Processes]:
    p = Processes(parted)
    yield p
    p.stop_all()


def check_exactly_once(
    parted: Settings,
    procs: Processes,
    cr: redis.Redis,
    pg: pg8000.native.Connection,
    run: str,
    count: int,
) -> None:
    keys = Keys(parted.namespace, partitions=parted.partitions)
    got = wait_delivered(parted.sink_path, run, count, procs)
    wait_drained(cr, keys)
    got = sink(parted.sink_path, run)  # nothing more arrived once everything was acknowledged
    assert len(got.alerts) == count
    assert got.lines == count, f"{got.doubled} alerts delivered twice"
    assert audit_rows(pg, run) == count


def check_spread(redis_cluster: Cluster, cr: redis.Redis, parted: Settings) -> None:
    keys = Keys(parted.namespace, partitions=parted.partitions)
    used = {
        primary_of(redis_cluster, part.events)
        for part in keys.all_partitions()
        if cr.xlen(part.events) > 0 and cr.xlen(part.alerts) > 0
    }
    assert used == set(redis_cluster.primaries()), "a primary holds no partition's streams"


@pytest.mark.usefixtures("demo_rules")
def test_mutt_run_on_a_cluster_delivers_5000_events_exactly_once(
    parted: Settings,
    procs: Processes,
    redis_cluster: Cluster,
    cr: redis.Redis,
    pg: pg8000.native.Connection,
) -> None:
    ingest = procs.run()
    run = f"run{uuid.uuid4().hex[:8]}"
    for start in range(0, 5000, 250):
        send(ingest, run, range(start, start + 250))
    check_exactly_once(parted, procs, cr, pg, run, 5000)
    check_spread(redis_cluster, cr, parted)
    assert procs.stop_all() == {"run": 0}


@pytest.mark.usefixtures("demo_rules")
def test_the_knative_path_on_a_cluster_delivers_exactly_once(
    parted: Settings,
    procs: Processes,
    redis_cluster: Cluster,
    cr: redis.Redis,
    pg: pg8000.native.Connection,
) -> None:
    ingest = procs.serve("ingest")
    alert = procs.serve("alert")
    forward = procs.serve("forward")
    procs.start("audit", "worker", "audit")
    procs.start("relay", "relay", "--to", f"alert={alert}/", "--to", f"forward={forward}/")
    run = f"kn{uuid.uuid4().hex[:8]}"
    for start in range(0, 2000, 250):
        send(ingest, run, range(start, start + 250))
    check_exactly_once(parted, procs, cr, pg, run, 2000)
    check_spread(redis_cluster, cr, parted)
    assert set(procs.stop_all().values()) == {0}
