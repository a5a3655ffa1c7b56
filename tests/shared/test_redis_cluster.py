"""MUTT on a real Redis Cluster: the client, and every script and transaction in one slot.

Three primaries with a replica each (``tests/support/cluster.py``); the keys
of a test live under its own namespace, with six stream partitions, so
they spread over every primary.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import redis
from redis.exceptions import CrossSlotTransactionError

from functions.forward import breaker
from functions.ingest.admission import Admitter
from shared.broker import streams
from shared.broker.dlq import Selection, iter_dlq, replay
from shared.broker.heartbeat import Heartbeat, alive_consumers
from shared.broker.keys import Keys
from shared.broker.schedule import Promoter, now_ms, promote_all, scheduled_count
from shared.broker.streams import Entry, Settlement, dead_letter_fields
from shared.config import Settings, load_settings
from shared.dynconfig import DynamicConfig
from shared.envelope import FIELD, encode
from shared.errors import ConfigError, UnreachableError
from shared.lua import run_all
from shared.metrics import StreamCollector
from shared.redis_client import connect_redis, is_cluster
from shared.replication import NotReplicated
from tests.support.cli import in_process
from tests.support.cluster import Cluster, primary_of
from tests.support.factories import accepted_event, event
from tests.support.processes import free_port


@pytest.fixture
def ckeys(cluster_settings: Settings) -> Keys:
    return Keys(cluster_settings.namespace, partitions=cluster_settings.partitions)


def test_the_cluster_scheme_selects_the_cluster_client(
    redis_cluster: Cluster, cr: redis.Redis
) -> None:
    assert is_cluster(cr)
    assert not is_cluster(redis.Redis())
    settings = load_settings({"MUTT_REDIS_URL": redis_cluster.url})
    assert settings.redis_url == redis_cluster.url
    assert load_settings({"MUTT_REDIS_URL": "rediss+cluster://h:7000"}).redis_url


def test_a_bad_scheme_is_named() -> None:
    with pytest.raises(ConfigError, match="redis\\+cluster://"):
        load_settings({"MUTT_REDIS_URL": "cluster://h:7000"})


def test_an_unreachable_cluster_is_one_clear_line() -> None:
    url = f"redis+cluster://u:s3cr3t@127.0.0.1:{free_port()}"
    with pytest.raises(UnreachableError, match="cannot reach a Redis Cluster") as caught:
        connect_redis(url, timeout=0.5)
    assert "s3cr3t" not in str(caught.value)


def test_partitions_spread_over_every_primary(redis_cluster: Cluster, ckeys: Keys) -> None:
    held = [primary_of(redis_cluster, part.events) for part in ckeys.all_partitions()]
    assert sorted(held.count(port) for port in set(held)) == [2, 2, 2]
    assert set(held) == set(redis_cluster.primaries())


def test_a_hand_off_settles_in_one_partition_and_never_across(cr: redis.Redis, ckeys: Keys) -> None:
    part = ckeys.partition(4)
    streams.ensure_group(cr, part.events, "alert")
    streams.publish(cr, part.events, [{FIELD: encode(accepted_event(1))}])
    (entry,) = streams.read_batch(cr, part.events, "alert", "c1", 10, None)
    plan = Settlement()
    plan.add(part.alerts, {FIELD: b"{}"})
    plan.add(part.dlq("alert"), {FIELD: b"{}"})
    plan.defer(part.events, "m1", b"{}", now_ms() + 60_000)
    plan.ack(entry.id)
    streams.settle(cr, part.events, "alert", plan)
    assert cr.xlen(part.alerts) == 1 and cr.xlen(part.dlq("alert")) == 1
    assert scheduled_count(cr, part.events) == 1
    assert int(cr.xpending(part.events, "alert")["pending"]) == 0

    across = Settlement()
    across.add(ckeys.partition(1).alerts, {FIELD: b"{}"})
    across.ack(entry.id)
    with pytest.raises(CrossSlotTransactionError, match="same slot"):
        streams.settle(cr, part.events, "alert", across)


def test_scripts_of_several_partitions_run_in_one_pipeline_and_reload(
    cr: redis.Redis, redis_cluster: Cluster, ckeys: Keys
) -> None:
    """promote.lua for every partition in one pipeline (one slot per call), and again after
    every node forgot its scripts (NOSCRIPT: loaded and run again, nothing lost)."""
    promoters = [Promoter(cr, part.events) for part in ckeys.all_partitions()]
    for part in ckeys.all_partitions():
        plan = Settlement()
        plan.defer(part.events, "m", encode(accepted_event(part.index)), now_ms() - 1)
        streams.settle(cr, part.events, "alert", plan)
    for node in redis_cluster.live():
        with node.client() as c:
            c.script_flush()
    assert promote_all(cr, promoters) == (6, 0)
    assert [cr.xlen(part.events) for part in ckeys.all_partitions()] == [1] * 6


def test_ingest_admission_takes_permits_then_publishes_per_partition(
    cr: redis.Redis, ckeys: Keys
) -> None:
    dyn = DynamicConfig(cr, ckeys.config)
    dyn.set("ingest_rate_limit", "50")
    adm = Admitter(cr, ckeys, dyn)
    batch = [event(n, hostname=f"host-{n}") for n in range(40)]
    assert adm.admit(batch).published == 40
    assert adm.admit(batch[:5]).duplicates == (True,) * 5
    assert adm.admit([event(n, hostname=f"host-{n}") for n in range(100, 120)]).refused
    counts = [int(cr.xlen(part.events)) for part in ckeys.all_partitions()]
    assert sum(counts) == 40 and sum(1 for n in counts if n) == 6


def test_breaker_rate_limit_and_markers_share_one_slot(cr: redis.Redis, ckeys: Keys) -> None:
    limits = breaker.Limits(
        cooldown_ms=60_000, probe_timeout_ms=1000, rate_limit=3, rate_window_ms=60_000
    )
    part = ckeys.partition(5)  # any partition's keys name the same breaker
    first = breaker.gated(breaker.gate(part, "pd", ["a1", "a2", "a3", "a4"], limits).run(cr))
    assert (first.admitted, first.granted, first.state) == (4, 3, "closed")
    done = breaker.finished(breaker.finish(part, "pd", ["a1"], [False] * 5, 5).run(cr))
    assert done.state == "open"
    again = breaker.gated(breaker.gate(ckeys, "pd", ["a1", "a2"], limits).run(cr))
    assert again.done == (True, False) and again.admitted == 0 and again.state == "open"
    assert breaker.state(cr, ckeys, "pd") == "open"


def test_heartbeats_and_dynamic_config_work_key_by_key(cr: redis.Redis, ckeys: Keys) -> None:
    beats = [Heartbeat(cr, ckeys, "alert", f"c{n}", 1.0, 5.0) for n in range(6)]
    for beat in beats[:4]:
        beat.beat()
    assert alive_consumers(cr, ckeys, "alert", [f"c{n}" for n in range(6)]) == {
        "c0",
        "c1",
        "c2",
        "c3",
    }
    dyn = DynamicConfig(cr, ckeys.config, refresh_seconds=0)
    dyn.set("breaker_threshold", "9")
    assert dyn.get("breaker_threshold") == 9


def test_dead_letters_replay_within_their_partition(cr: redis.Redis, ckeys: Keys) -> None:
    for part in ckeys.all_partitions():
        fields: dict[Any, Any] = dead_letter_fields(
            Entry("1-1", {FIELD: encode(accepted_event(part.index))}),
            stage="alert",
            origin=part.events,
            reason="bad",
        )
        cr.xadd(part.dlq("alert"), fields)
    refs = [e.ref for e in iter_dlq(cr, ckeys, "alert")]
    assert len(refs) == 6
    done = replay(cr, ckeys, Selection(stages=("alert",), ids=tuple(refs)))
    assert done.replayed == 6
    assert [cr.xlen(part.events) for part in ckeys.all_partitions()] == [1] * 6


def test_status_and_metrics_read_every_partition(
    cr: redis.Redis,
    ckeys: Keys,
    cluster_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for part in ckeys.all_partitions():
        streams.ensure_group(cr, part.events, "alert")
        streams.publish(cr, part.events, [{FIELD: encode(accepted_event(part.index))}])
    cli = in_process(cluster_settings, monkeypatch, capsys)
    ran = cli("status", "--json")
    assert ran.code == 0, ran.err
    doc = orjson.loads(ran.out)
    events = [s for s in doc["streams"] if s["name"] == "events"]
    assert [s["length"] for s in events] == [1] * 6
    families = {f.name: f for f in StreamCollector(cr, ckeys).collect()}
    (length,) = [
        s for s in families["mutt_stream_length"].samples if s.labels["stream"] == "events"
    ]
    assert length.value == 6


def test_run_all_answers_in_order_across_nodes(cr: redis.Redis, ckeys: Keys) -> None:
    calls = [Promoter(cr, part.alerts).call() for part in reversed(ckeys.all_partitions())]
    assert run_all(cr, calls) == [[0, 0]] * 6


def test_ingest_waits_for_a_replica_when_asked(
    cr: redis.Redis, ckeys: Keys, redis_cluster: Cluster
) -> None:
    """``ingest_wait_replicas`` 1: once admitted, the events are on the partitions' replicas;
    asking for more replicas than exist refuses the request instead of acknowledging it."""
    dyn = DynamicConfig(cr, ckeys.config)
    dyn.set("ingest_wait_replicas", "1")
    adm = Admitter(cr, ckeys, dyn)
    assert adm.admit([event(n, hostname=f"host-{n}") for n in range(30)]).published == 30
    on_replicas = 0
    for part in ckeys.all_partitions():
        replica = redis_cluster.replica_of(primary_of(redis_cluster, part.events))
        with replica.client() as c:
            c.execute_command("READONLY")
            on_replicas += int(c.xlen(part.events))
    assert on_replicas == 30

    dyn.set("ingest_wait_replicas", "2")  # each primary has one replica
    dyn.set("ingest_wait_timeout_ms", "50")
    with pytest.raises(NotReplicated, match="1 of 2 replicas"):
        Admitter(cr, ckeys, dyn).admit([event(100, hostname="host-100")])
