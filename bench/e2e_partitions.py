"""End to end with stream partitions, on one Redis and on a three-primary Redis Cluster.

Run: ``python -m bench.e2e_bench --partitions 1,2,4 [--cluster] [--events N] [--batches N]``.

The same pipeline, load and checks as ``bench/e2e_bench.py`` (HTTP ingest,
alert, forward to the file sink, audit; 1,000 rules; wrk), once per
configuration, each in a fresh namespace and schema: every ``--partitions``
count on the Redis of ``MUTT_REDIS_URL`` (default the local one), then, with
``--cluster``, every count on a Redis Cluster of three primaries with a
replica each that the benchmark starts on free ports (Debian's
``redis-server``, as ``tests/support/cluster.py`` does for the tests). No
ingest-only baseline and no latency runs: the question is what partitions
change. Three runs per configuration:

- ``drain``: ``--batches`` legacy requests of 100 events are queued with no
  worker running, then the workers start and drain them. The streams hold
  a backlog, so every read takes a full batch: the Redis CPU per event of a
  saturated pipeline, which is when partitions matter (ingest's own Redis
  work is not in it);
- ``single`` and ``legacy100``: as in ``e2e_bench``, end to end while wrk
  sends. On a small machine the Python processes are the bottleneck there,
  the streams stay short and batches small, so the Redis CPU per event is
  that of a pipeline far from Redis' limit.

With ``--cluster`` the largest count runs once more on the cluster with
``ingest_wait_replicas`` 1 (ingest waits for a replica to confirm each
request's writes): what that durability costs.

Besides events/s and the loss count, the table gives the Redis server CPU
per event: on one Redis, the server's; on the cluster, the sum over the
primaries and each primary's (replicas are shown apart). One primary
at 100% of a core is the ceiling of what it can carry, so ``1e6 / busiest
µs per event`` is the rate at which the busiest primary would saturate:
the pipeline's Redis ceiling, when the Python processes are not the limit.
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis

from bench import e2e_bench as e2e
from bench.common import (
    Child,
    children,
    log,
    machine,
    num,
    pg_schema,
    print_table,
    redis_namespace,
    scratch_dir,
    server_urls,
    tree_cpu_seconds,
    wait_until,
)
from bench.data import Generator, ce_pool_lines, legacy_pool_lines
from shared.broker.keys import Keys
from shared.broker.stages import consumed
from shared.broker.streams import drained
from shared.db.connection import connect_pg
from shared.dynconfig import DynamicConfig
from shared.redis_client import connect_redis


@dataclass
class Servers:
    """Where one configuration's Redis is: one server, or a cluster's nodes."""

    label: str
    url: str
    primaries: list[tuple[str, int]] = field(default_factory=list)  # empty: one Redis
    replicas: list[tuple[str, int]] = field(default_factory=list)


def _node_cpu(host: str, port: int) -> float:
    with redis.Redis(host=host, port=port) as c:
        info = c.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


class PartitionedPipeline(e2e.Pipeline):
    """``e2e_bench.Pipeline`` on ``servers`` with ``partitions`` stream partitions."""

    def __init__(
        self,
        ns: str,
        schema: str,
        tmp: Path,
        kids: list[Child],
        servers: Servers,
        partitions: int,
        extra: dict[str, str],
    ) -> None:
        super().__init__(ns, schema, tmp, kids, {**extra, "partitions": str(partitions)})
        self.r.close()
        self.servers = servers
        self.redis_url = servers.url
        self.r = connect_redis(servers.url)
        self.keys = Keys(ns, partitions=partitions)

    def published(self) -> int:
        return sum(int(self.r.xlen(part.events)) for part in self.keys.all_partitions())

    def drained(self) -> bool:
        return all(drained(self.r, s, g) for s, g in consumed(self.keys))

    def cpu(self) -> dict[str, float]:
        """As ``e2e_bench.Pipeline.cpu``; on a cluster each primary apart, replicas summed."""
        if not self.servers.primaries:
            return super().cpu()
        used: dict[str, float] = {}
        for name, seconds in tree_cpu_seconds({c.name: c.pid for c in self.kids}).items():
            stage = name.split("-")[0]
            used[stage] = used.get(stage, 0.0) + seconds
        for n, (host, port) in enumerate(self.servers.primaries):
            used[f"primary {n}"] = _node_cpu(host, port)
        used["replicas"] = sum(_node_cpu(h, p) for h, p in self.servers.replicas)
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        used["load generator"] = usage.ru_utime + usage.ru_stime
        return used


@dataclass
class Result:
    servers: str
    partitions: int
    phases: list[e2e.Phase]


def run_config(
    args: argparse.Namespace,
    servers: Servers,
    partitions: int,
    ns: str,
    gen_seed: int,
    wait_replicas: int = 0,
) -> Result:
    """One configuration: fresh schema and processes, the two end-to-end throughput runs."""
    _, database_url = server_urls()
    workers, _, threads = args.ingest.partition("x")
    gen = Generator(gen_seed)
    run_id = uuid.uuid4().hex[:6]
    extra = {"worker_block_ms": "200"} if args.quick else {}
    with (
        pg_schema(database_url, "e2ep") as schema,
        scratch_dir("e2ep") as tmp,
        children() as kids,
    ):
        pipe = PartitionedPipeline(ns, schema, tmp, kids, servers, partitions, extra)
        dyn = DynamicConfig(pipe.r, pipe.keys.config)
        for name, value in (
            ("ingest_rate_limit", 100_000_000),
            ("forward_rate_limit", 0),
            ("unhandled_threshold", 10_000_000),
            ("ingest_wait_replicas", wait_replicas),
        ):
            dyn.set(name, str(value))
        ruleset, pool = e2e.load_rules(pipe, gen, args.rules)
        ce_pool = tmp / "pool-ce.txt"
        ce_pool.write_text("\n".join(ce_pool_lines(pool)) + "\n")
        legacy_pool = tmp / "pool-legacy.txt"
        legacy_pool.write_text("\n".join(legacy_pool_lines(pool, e2e.BATCH)) + "\n")
        single = e2e.Phase(
            "single",
            f"s{run_id}",
            args.events,
            args.events,
            e2e.expected_single(e2e.ce_matches(ruleset, pool), args.events),
        )
        batches = e2e.Phase(
            "legacy100",
            f"b{run_id}",
            args.batches * e2e.BATCH,
            args.batches,
            e2e.expected_batches(e2e.legacy_matches(ruleset, pool), args.batches),
        )
        drain = e2e.Phase(
            "drain",
            f"d{run_id}",
            args.batches * e2e.BATCH,
            args.batches,
            e2e.expected_batches(e2e.legacy_matches(ruleset, pool), args.batches),
        )
        pipe.start_ingest(int(workers), int(threads))
        pg = connect_pg(database_url, schema)
        try:
            log(f"drain: {drain.events:,} events queued, then the workers start ...")
            e2e.run_wrk_until(
                pipe,
                "legacy",
                drain.prefix + "e-",
                legacy_pool,
                drain.requests,
                drain.events,
                False,
            )
            pipe.start_workers(args.alert_workers)
            before = pipe.cpu()
            drain.seconds = wait_until(pipe.drained, 600, 0.02, "the backlog drained")
            drain.cpu = e2e.cpu_delta(before, pipe.cpu())
            log(f"  {drain.rate:,.0f} events/s ({drain.seconds:.2f}s)")
            e2e.settle(pipe, drain, pg)
            e2e.run_wrk_until(pipe, "ce", f"w{run_id}-", ce_pool, 200, 200, e2e=True)  # warm up
            for phase, mode, file in ((single, "ce", ce_pool), (batches, "legacy", legacy_pool)):
                before = pipe.cpu()
                phase.seconds, phase.wrk = e2e.throughput(pipe, phase, mode, file, e2e=True)
                phase.cpu = e2e.cpu_delta(before, pipe.cpu())
                e2e.settle(pipe, phase, pg)
        finally:
            pg.close()
            pipe.r.close()
    label = servers.label + (f", WAIT {wait_replicas}" if wait_replicas else "")
    return Result(label, partitions, [drain, single, batches])


@contextlib.contextmanager
def three_primaries() -> Iterator[Servers]:
    """A Redis Cluster of three primaries and three replicas for the run (removed after)."""
    from tests.support.cluster import Cluster, available  # dev tooling, like the benchmarks

    if not available():
        raise SystemExit("--cluster needs /usr/bin/redis-server and redis-cli (redis-server)")
    nodes = Cluster(Path(tempfile.mkdtemp(prefix="mutt-bench-cluster-"))).start()
    try:
        primaries = set(nodes.primaries())
        yield Servers(
            "cluster (3 primaries)",
            nodes.url,
            [("127.0.0.1", p) for p in sorted(primaries)],
            [("127.0.0.1", n.port) for n in nodes.nodes if n.port not in primaries],
        )
    finally:
        nodes.stop()


def run(args: argparse.Namespace) -> list[Result]:
    counts = [int(n) for n in str(args.partitions).split(",") if n.strip()]
    redis_url, _ = server_urls()
    results = []
    one = Servers("one Redis", redis_url)
    for n in counts:
        log(f"== {n} partition(s) on one Redis ({one.url})")
        with redis_namespace(redis_url, f"e2ep{n}") as ns:
            results.append(run_config(args, one, n, ns, args.seed))
    if args.cluster:
        with three_primaries() as cluster:
            for n, wait in [*((n, 0) for n in counts), (max(counts), 1)]:
                log(f"== {n} partition(s) on {cluster.label} ({cluster.url}), WAIT {wait}")
                ns = f"bench-e2ep{n}-{uuid.uuid4().hex[:6]}"
                results.append(run_config(args, cluster, n, ns, args.seed, wait))
    return results


def _redis_cpu(phase: e2e.Phase) -> tuple[float, list[float], float | None]:
    """Redis µs/event: all primaries (or the one server), each primary, the replicas."""
    per = 1e6 / max(1, phase.events)
    primaries = [v * per for k, v in sorted(phase.cpu.items()) if k.startswith("primary ")]
    if not primaries:
        return phase.cpu.get("redis-server", 0.0) * per, [], None
    return sum(primaries), primaries, phase.cpu.get("replicas", 0.0) * per


def report(results: list[Result], args: argparse.Namespace) -> None:
    print(f"machine: {machine()}")
    print(
        f"pipeline: ingest WORKERSxTHREADS={args.ingest}, {args.alert_workers} alert worker(s),"
        f" {args.rules:,} rules, file sink; each configuration in a fresh namespace and schema"
    )
    rows = []
    for res in results:
        for p in res.phases:
            total, primaries, replicas = _redis_cpu(p)
            one_core = max(primaries) if primaries else total
            rows.append(
                [
                    res.servers,
                    res.partitions,
                    p.name,
                    f"{p.events:,}",
                    num(p.rate),
                    p.lost,
                    p.dup,
                    f"{total:,.1f}",
                    " / ".join(f"{v:,.1f}" for v in primaries) or "-",
                    f"{replicas:,.1f}" if replicas is not None else "-",
                    num(1e6 / one_core) if one_core else "n/a",
                ]
            )
    print_table(
        "end to end throughput by stream partitions (HTTP ingest -> alert -> forward -> file"
        " sink, + audit; drain: a queued backlog, workers only); Redis CPU in µs per event",
        [
            "redis",
            "partitions",
            "request",
            "events",
            "end to end ev/s",
            "lost",
            "dup",
            "redis µs/ev (primaries)",
            "each primary µs/ev",
            "replicas µs/ev",
            "Redis ceiling ev/s",
        ],
        rows,
    )


def main(args: argparse.Namespace) -> int:
    results = run(args)
    report(results, args)
    return 1 if any(p.lost for r in results for p in r.phases) else 0
