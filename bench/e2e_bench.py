"""End to end: HTTP ingest -> alert -> forward (file sink) + audit, as processes, 1,000 rules.

Run: ``python -m bench.e2e_bench [--events 5000] [--batches 200] [--rate 1000] [--quick]``;
``--partitions 1,2,4 [--cluster]`` compares stream partitions instead (``bench/e2e_partitions.py``).

The pipeline is the real one: ``mutt serve ingest`` (``--ingest WORKERSxTHREADS``,
default 1x4 as ``mutt run``), ``mutt worker alert``, ``mutt worker forward``
and ``mutt worker audit``, in a private Redis namespace and PostgreSQL schema.
1,000 generated rules (contains / regex / OID prefix, 10% with a severity
condition) are loaded with ``functions.alert.catalog.insert_catalog``; a pool
of 1,000 events (20% traps) has 10% carrying some rule's trigger. Which events
must raise an alert is computed up front with the same ingest parsing and a
locally compiled ``RuleSet``, so ``lost`` is exact.

Dynamic config of the namespace: ingest rate limit 100,000,000 per window
(exercised, never refusing), ``forward_rate_limit=0`` (the default 100/s would
measure the limiter, see bench.forward_bench) and ``unhandled_threshold``
10,000,000 (no meta-alerts, so the expected alert count is exact).

1. Throughput. The load comes from wrk (``bench/wrk_ingest.lua``, a separate
   process): ``--events`` single-event binary CloudEvents, then ``--batches``
   legacy arrays of 100 events at ``/api/v2/ingest``. The baseline, in the same
   run, is the same load on the same ingest process before any worker runs
   ("ingest only": until the events are in the stream). End to end is until
   every event is handled, every alert delivered to the file sink and every
   audit row written (all three consumer groups drained).
2. Latency at fixed offered rates, open loop (``bench/loadgen.py``, a separate
   process): ``--rate`` events/s (default 1,000) in legacy requests of 10
   events, then ``--rate``/4 as single-event CloudEvents (``--latency`` sets
   the list, e.g. ``1000x10,250x1``), ``--seconds`` each: per alert, from
   ingest acceptance (the event's ``received_at``) to the file sink's
   ``delivered_at``.
3. CPU per event by process during each end-to-end run: each stage's process
   tree (from /proc), the Redis server (``INFO cpu``: shared, it counts every
   client) and the load generator; "CPUs busy" is their sum over wall time,
   "busiest" the stage using the most CPU and how many CPUs' worth (one
   process tops out at 1.00: run rising ``--latency`` rates to see where the
   bottleneck moves as the load nears saturation).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pg8000.native
import redis

from bench import knative_bench
from bench.common import (
    Child,
    Wrk,
    WrkResult,
    child_env,
    children,
    free_port,
    has_group,
    log,
    machine,
    mutt_argv,
    num,
    percentile,
    pg_schema,
    print_table,
    ratio,
    redis_cpu_seconds,
    redis_namespace,
    scratch_dir,
    server_urls,
    tree_cpu_seconds,
    wait_http,
    wait_until,
)
from bench.data import BenchEvent, Generator, ce_pool_lines, legacy_pool_lines
from functions.alert.catalog import insert_catalog, parse_catalog
from functions.alert.rules import RuleSet
from functions.ingest.cloudevent_data import parse_cloudevent_data
from functions.ingest.legacy import parse_legacy_event
from shared.broker import streams
from shared.broker.keys import GROUP_ALERT, GROUP_AUDIT, GROUP_FORWARD, Keys
from shared.db.connection import connect_pg
from shared.dynconfig import DynamicConfig

POOL = 1000
BATCH = 100
WRK_SOURCE = "/bench/wrk"
LOADGEN_SOURCE = "/bench/loadgen"
LEGACY_SOURCE = "/api/v2/ingest"


@dataclass
class Phase:
    """One load run: what was sent, what should arrive, what did."""

    name: str
    prefix: str
    events: int
    requests: int
    expected_alerts: int
    ingest_only: float | None = None  # events/s, baseline
    seconds: float = 0.0
    wrk: WrkResult | None = None
    delivered: int = 0
    sink_lines: int = 0
    audit_rows: int = 0
    latencies: list[float] = field(default_factory=list)
    loadgen: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds by process
    offered: float = 0.0  # events/s (latency runs)
    batch: int = 1  # events per request (latency runs)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    @property
    def lost(self) -> int:
        return self.expected_alerts - self.delivered

    @property
    def dup(self) -> int:
        return self.sink_lines - self.delivered


class Pipeline:
    """The namespace, schema, sink and processes of one run."""

    def __init__(
        self, ns: str, schema: str, tmp: Path, kids: list[Child], settings: dict[str, str]
    ) -> None:
        self.redis_url, self.database_url = server_urls()
        self.ns = ns
        self.keys = Keys(ns)
        self.schema = schema
        self.tmp = tmp
        self.kids = kids
        self.sink = tmp / "alerts.jsonl"
        self.r = redis.Redis.from_url(self.redis_url)
        self.url = ""
        self.settings = settings  # extra MUTT_* settings of every process

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return child_env(
            redis_url=self.redis_url,
            database_url=self.database_url,
            database_schema=self.schema,
            namespace=self.ns,
            sink_file=str(self.sink),
            data_dir=str(self.tmp),
            log_level="WARNING",
            **self.settings,
            **(extra or {}),
        )

    def start_ingest(self, workers: int, threads: int) -> None:
        port = free_port()
        argv = mutt_argv("serve", "ingest", "--host", "127.0.0.1", "--port", str(port))
        env = self.env({"WORKERS": str(workers), "THREADS": str(threads)})
        child = Child("ingest", argv, env, self.tmp)
        self.kids.append(child)
        self.url = f"http://127.0.0.1:{port}"
        took = wait_http(self.url + "/healthz", child)
        log(f"ingest (WORKERS={workers} THREADS={threads}) ready in {took:.1f}s")

    def start_workers(self, alert_workers: int = 1) -> None:
        stages = [*(["alert"] * alert_workers), "forward", "audit"]
        for n, stage in enumerate(stages):
            name = stage if stage != "alert" or n == 0 else f"alert-{n + 1}"
            self.kids.append(Child(name, mutt_argv("worker", stage), self.env(), self.tmp))
        pairs = [
            (self.keys.events, GROUP_ALERT),
            (self.keys.alerts, GROUP_FORWARD),
            (self.keys.audit, GROUP_AUDIT),
        ]

        def ready() -> bool:
            for child in self.kids:
                child.check()
            return all(has_group(self.r, s, g) for s, g in pairs)

        took = wait_until(ready, 60, 0.05, "worker consumer groups")
        log(f"workers alert, forward, audit ready in {took:.1f}s")

    def check(self) -> None:
        for child in self.kids:
            child.check()

    def cpu(self) -> dict[str, float]:
        """CPU seconds used so far: each stage's process tree, Redis, reaped load generators."""
        used: dict[str, float] = {}
        for name, seconds in tree_cpu_seconds({c.name: c.pid for c in self.kids}).items():
            stage = name.split("-")[0]  # alert-2 counts as alert
            used[stage] = used.get(stage, 0.0) + seconds
        used["redis-server"] = redis_cpu_seconds(self.r)
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        used["load generator"] = usage.ru_utime + usage.ru_stime
        return used

    def published(self) -> int:
        return int(self.r.xlen(self.keys.events))

    def drained(self) -> bool:
        return all(
            streams.drained(self.r, s, g)
            for s, g in (
                (self.keys.events, GROUP_ALERT),
                (self.keys.alerts, GROUP_FORWARD),
                (self.keys.audit, GROUP_AUDIT),
            )
        )

    def sink_records(self, prefix: str) -> list[dict[str, object]]:
        if not self.sink.exists():
            return []
        out = []
        for line in self.sink.read_bytes().splitlines():
            if not line.strip():
                continue
            doc = orjson.loads(line)
            if str(doc["alert"]["event"]["id"]).startswith(prefix):
                out.append(doc)
        return out


def audit_rows(conn: pg8000.native.Connection, prefix: str) -> int:
    return int(
        conn.run("SELECT count(*) FROM event_audit_log WHERE event->>'id' LIKE :p", p=prefix + "%")[
            0
        ][0]
    )


# ------------------------------------------------------------------ data


def load_rules(pipe: Pipeline, gen: Generator, count: int) -> tuple[RuleSet, list[BenchEvent]]:
    """Insert ``count`` rules; return the same rules compiled locally and the event pool."""
    entries, triggers = gen.rules(count)
    catalog = parse_catalog({"rules": entries}, "bench rules")
    conn = connect_pg(pipe.database_url, pipe.schema)
    try:
        started = time.perf_counter()
        insert_catalog(conn, pipe.r, pipe.ns, catalog)
        log(f"{count:,} rules inserted in {time.perf_counter() - started:.1f}s")
    finally:
        conn.close()
    ruleset = RuleSet.compile(catalog.rules)
    return ruleset, gen.events(POOL, triggers, hit_share=0.10)


def ce_matches(ruleset: RuleSet, pool: Sequence[BenchEvent]) -> list[bool]:
    now = datetime.now(UTC)
    return [
        ruleset.match(
            parse_cloudevent_data(
                e.ce_type, e.data, source=WRK_SOURCE, event_id="x", received_at=now
            )
        )
        is not None
        for e in pool
    ]


def legacy_matches(ruleset: RuleSet, pool: Sequence[BenchEvent]) -> list[bool]:
    now = datetime.now(UTC)
    return [
        ruleset.match(
            parse_legacy_event(e.data, source=LEGACY_SOURCE, event_id="x:0", received_at=now)
        )
        is not None
        for e in pool
    ]


def expected_single(matches: Sequence[bool], requests: int) -> int:
    """wrk request n (1-based) uses pool line (n-1) modulo the pool size."""
    return sum(1 for n in range(requests) if matches[n % len(matches)])


def expected_batches(matches: Sequence[bool], requests: int) -> int:
    lines = len(matches) // BATCH
    per_line = [sum(matches[i * BATCH : (i + 1) * BATCH]) for i in range(lines)]
    return sum(per_line[n % lines] for n in range(requests))


# ---------------------------------------------------------------- phases


def run_wrk_until(
    pipe: Pipeline, mode: str, prefix: str, pool: Path, requests: int, done_at: int, e2e: bool
) -> tuple[float, WrkResult]:
    """wrk with a request limit; the seconds until ``done_at`` events are in the stream
    (and, end to end, every consumer group is drained)."""
    start_count = pipe.published()
    started = time.monotonic()
    wrk = Wrk(pipe.url, [mode, prefix, str(pool), str(requests)], seconds=600)

    def finished() -> bool:
        pipe.check()
        if wrk.proc.poll() is not None:
            raise RuntimeError(
                f"wrk ended early:\n{wrk.proc.stderr.read() if wrk.proc.stderr else ''}"
            )
        if pipe.published() - start_count < done_at:
            return False
        return not e2e or pipe.drained()

    try:
        wait_until(finished, 300, 0.02, f"{done_at:,} events through")
        seconds = time.monotonic() - started
    finally:
        wrk.interrupt()
    return seconds, wrk.result()


def throughput(
    pipe: Pipeline, phase: Phase, mode: str, pool: Path, e2e: bool
) -> tuple[float, WrkResult]:
    what = "end to end" if e2e else "ingest only"
    log(f"{phase.name}: {phase.events:,} events in {phase.requests:,} requests, {what} ...")
    seconds, result = run_wrk_until(
        pipe, mode, phase.prefix + ("e-" if e2e else "i-"), pool, phase.requests, phase.events, e2e
    )
    log(f"  {phase.events / seconds:,.0f} events/s ({seconds:.2f}s)")
    return seconds, result


def settle(pipe: Pipeline, phase: Phase, pg: pg8000.native.Connection) -> None:
    """Count what reached the sink and the audit table for the phase's ids."""
    prefix = phase.prefix + "e-"
    records = pipe.sink_records(prefix)
    phase.sink_lines = len(records)
    phase.delivered = len({str(doc["alert_id"]) for doc in records})
    phase.audit_rows = audit_rows(pg, prefix)
    for doc in records:
        alert = doc["alert"]
        assert isinstance(alert, dict)
        received = datetime.fromisoformat(str(alert["event"]["received_at"]))
        delivered = datetime.fromisoformat(str(doc["delivered_at"]))
        phase.latencies.append((delivered - received).total_seconds())
    log(
        f"  alerts expected {phase.expected_alerts:,}, delivered {phase.delivered:,}, "
        f"lost {phase.lost}, dup {phase.dup}, audit rows {phase.audit_rows:,}"
    )


def latency_phase(pipe: Pipeline, phase: Phase, pool: Path, seconds: float) -> None:
    log(
        f"latency: {phase.offered:,.0f} events/s offered in requests of {phase.batch} "
        f"for {seconds:g}s (open loop) ..."
    )
    argv = [
        sys.executable,
        "-m",
        "bench.loadgen",
        pipe.url,
        "--rate",
        str(phase.offered),
        "--batch",
        str(phase.batch),
        "--seconds",
        str(seconds),
        "--prefix",
        phase.prefix + "e-",
        "--pool",
        str(pool),
    ]
    started = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"loadgen failed:\n{done.stderr[-2000:]}")
    phase.loadgen = orjson.loads(done.stdout.strip().splitlines()[-1])
    phase.requests = int(phase.loadgen["requests"])
    phase.events = int(phase.loadgen["events"])
    wait_until(pipe.drained, 120, 0.05, "pipeline drained after the latency run")
    phase.seconds = time.monotonic() - started


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: max(0.0, after[name] - before.get(name, 0.0)) for name in after}


def parse_latency_specs(text: str) -> list[tuple[float, int]]:
    """``"1000x10,200x1"`` -> [(1000.0, 10), (200.0, 1)]: events/s x events per request."""
    specs = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        rate, _, batch = part.partition("x")
        specs.append((float(rate), int(batch or "1")))
    return specs


def loadgen_expected(matches: Sequence[bool], requests: int, batch: int) -> int:
    """Request k, item j of bench/loadgen.py uses pool line (k * batch + j) modulo the pool."""
    return sum(
        1 for k in range(requests) for j in range(batch) if matches[(k * batch + j) % len(matches)]
    )


# ---------------------------------------------------------------- main


def run(args: argparse.Namespace) -> tuple[list[Phase], list[Phase]]:
    redis_url, database_url = server_urls()
    workers, _, threads = args.ingest.partition("x")
    gen = Generator(args.seed)
    run_id = uuid.uuid4().hex[:6]
    with (
        redis_namespace(redis_url, "e2e") as ns,
        pg_schema(database_url, "e2e") as schema,
        scratch_dir("e2e") as tmp,
        children() as kids,
    ):
        # --quick: workers wake faster from a blocking read, so they stop sooner at the end
        extra = {"worker_block_ms": "200"} if args.quick else {}
        pipe = Pipeline(ns, schema, tmp, kids, extra)
        dyn = DynamicConfig(pipe.r, pipe.keys.config)
        for name, value in (
            ("ingest_rate_limit", 100_000_000),
            ("forward_rate_limit", 0),
            ("unhandled_threshold", 10_000_000),
        ):
            dyn.set(name, str(value))
        ruleset, pool = load_rules(pipe, gen, args.rules)
        single_matches = ce_matches(ruleset, pool)
        batch_matches = legacy_matches(ruleset, pool)
        log(f"event pool: {len(pool):,} events, {sum(single_matches) / len(pool):.1%} match a rule")
        ce_pool = tmp / "pool-ce.txt"
        ce_pool.write_text("\n".join(ce_pool_lines(pool)) + "\n")
        legacy_pool = tmp / "pool-legacy.txt"
        legacy_pool.write_text("\n".join(legacy_pool_lines(pool, BATCH)) + "\n")

        single = Phase(
            "single",
            f"s{run_id}",
            args.events,
            args.events,
            expected_single(single_matches, args.events),
        )
        batches = Phase(
            "legacy100",
            f"b{run_id}",
            args.batches * BATCH,
            args.batches,
            expected_batches(batch_matches, args.batches),
        )
        pipe.start_ingest(int(workers), int(threads))
        # warm the ingest process (imports, connections) with a few requests
        run_wrk_until(pipe, "ce", f"w{run_id}-", ce_pool, 200, 200, e2e=False)
        for phase, mode, file in ((single, "ce", ce_pool), (batches, "legacy", legacy_pool)):
            seconds, _ = throughput(pipe, phase, mode, file, e2e=False)
            phase.ingest_only = phase.events / seconds
        pipe.r.delete(pipe.keys.events)  # the baseline's events are not the workers' business

        pipe.start_workers(args.alert_workers)
        pg = connect_pg(database_url, schema)
        try:
            for phase, mode, file in ((single, "ce", ce_pool), (batches, "legacy", legacy_pool)):
                before = pipe.cpu()
                phase.seconds, phase.wrk = throughput(pipe, phase, mode, file, e2e=True)
                phase.cpu = cpu_delta(before, pipe.cpu())
                settle(pipe, phase, pg)
            fixed = []
            for n, (rate, batch) in enumerate(parse_latency_specs(args.latency)):
                phase = Phase(f"{rate:g}x{batch}", f"l{n}{run_id}", 0, 0, 0)
                phase.offered, phase.batch = rate, batch
                before = pipe.cpu()
                latency_phase(pipe, phase, ce_pool, args.seconds)
                phase.cpu = cpu_delta(before, pipe.cpu())
                matches = single_matches if batch == 1 else batch_matches
                phase.expected_alerts = loadgen_expected(matches, phase.requests, batch)
                settle(pipe, phase, pg)
                fixed.append(phase)
        finally:
            pg.close()
        pipe.r.close()
    return [single, batches], fixed


def ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 1000:,.0f}"


def report(phases: Sequence[Phase], fixed: Sequence[Phase], args: argparse.Namespace) -> None:
    print(f"machine: {machine()}")
    print(
        f"pipeline: ingest WORKERSxTHREADS={args.ingest}, {args.alert_workers} alert worker(s), "
        f"{args.rules:,} rules, file sink"
    )
    print_table(
        "end to end throughput (HTTP ingest -> alert -> forward -> file sink, + audit); "
        "latency = received_at -> delivered_at under this burst",
        [
            "request",
            "events",
            "requests",
            "ingest only ev/s",
            "end to end ev/s",
            "vs ingest only",
            "alerts",
            "delivered",
            "lost",
            "dup",
            "audit rows",
            "p50 ms",
            "p95 ms",
            "p99 ms",
        ],
        [
            [
                p.name,
                f"{p.events:,}",
                f"{p.requests:,}",
                num(p.ingest_only),
                num(p.rate),
                ratio(p.rate, p.ingest_only),
                f"{p.expected_alerts:,}",
                f"{p.delivered:,}",
                p.lost,
                p.dup,
                f"{p.audit_rows:,}",
                ms(percentile(p.latencies, 50)),
                ms(percentile(p.latencies, 95)),
                ms(percentile(p.latencies, 99)),
            ]
            for p in phases
        ],
    )
    print_table(
        f"end to end latency at a fixed offered rate (received_at -> delivered_at, "
        f"{args.seconds:g}s each, open loop)",
        [
            "offered ev/s",
            "ev/req",
            "achieved ev/s",
            "events",
            "http errors",
            "http p50 ms",
            "http p99 ms",
            "alerts",
            "delivered",
            "lost",
            "dup",
            "audit rows",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "max ms",
        ],
        [
            [
                num(p.offered),
                p.batch,
                num(p.loadgen.get("offered_rate")),
                f"{p.events:,}",
                int(p.loadgen.get("errors", 0)),
                f"{p.loadgen.get('p50_ms', 0):.1f}",
                f"{p.loadgen.get('p99_ms', 0):.1f}",
                f"{p.expected_alerts:,}",
                f"{p.delivered:,}",
                p.lost,
                p.dup,
                f"{p.audit_rows:,}",
                ms(percentile(p.latencies, 50)),
                ms(percentile(p.latencies, 95)),
                ms(percentile(p.latencies, 99)),
                ms(max(p.latencies, default=None)),
            ]
            for p in fixed
        ],
    )
    names = ["ingest", "alert", "forward", "audit", "redis-server", "load generator"]
    print_table(
        "CPU per event by process during each end-to-end run (µs of CPU / event)",
        ["run", "events", "wall s", *names, "total", "CPUs busy", "busiest (CPUs)"],
        [
            [
                p.name,
                f"{p.events:,}",
                f"{p.seconds:.1f}",
                *(f"{p.cpu.get(n, 0.0) / max(1, p.events) * 1e6:,.0f}" for n in names),
                f"{sum(p.cpu.values()) / max(1, p.events) * 1e6:,.0f}",
                f"{sum(p.cpu.values()) / p.seconds:.2f}" if p.seconds else "n/a",
                _busiest(p.cpu, p.seconds),
            ]
            for p in [*phases, *fixed]
        ],
    )


def _busiest(cpu: dict[str, float], seconds: float) -> str:
    """The stage that used the most CPU over the run, and how many CPUs' worth: the bottleneck
    when it nears 1.00 (one process can use one core), or the whole box when the sum nears 2."""
    stages = {k: v for k, v in cpu.items() if k != "load generator"}
    if not stages or not seconds:
        return "n/a"
    name = max(stages, key=lambda k: stages[k])
    return f"{name} {stages[name] / seconds:.2f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=5000, help="single-event requests")
    parser.add_argument("--batches", type=int, default=200, help="100-event legacy requests")
    parser.add_argument(
        "--rate",
        type=float,
        default=1000.0,
        help="offered events/s of the first latency run (default %(default)s)",
    )
    parser.add_argument(
        "--latency",
        default="",
        help="latency runs as RATExEVENTS_PER_REQUEST list; default: <rate>x10,<rate/4>x1",
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each latency run")
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument(
        "--alert-workers", type=int, default=1, help="`mutt worker alert` processes (default 1)"
    )
    parser.add_argument("--ingest", default="1x4", help="ingest WORKERSxTHREADS (default 1x4)")
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--quick", action="store_true", help="small sizes (< 20 s)")
    parser.add_argument(
        "--mode",
        choices=["pipeline", "knative"],
        default="pipeline",
        help="pipeline: HTTP ingest to sink through the workers (default); knative: a backlog"
        " drained by the worker path and by the Knative path (relay + mutt serve) side by side"
        " (bench.knative_bench)",
    )
    knative_bench.add_arguments(parser)
    parser.add_argument(
        "--partitions",
        default="1",
        help="stream partitions, one count or a list (1,2,4): only the end-to-end throughput"
        " runs, once per count, side by side (bench/e2e_partitions.py)",
    )
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="with --partitions: each count on a three-primary Redis Cluster too",
    )
    args = parser.parse_args(argv)
    if args.mode == "knative":
        return knative_bench.main_from(args)
    if args.quick:
        args.events = min(args.events, 500)
        args.batches = min(args.batches, 10)
        args.seconds = min(args.seconds, 1.5)
        args.rate = min(args.rate, 500.0)
    if not args.latency:
        args.latency = f"{args.rate:g}x10,{args.rate / 4:g}x1"
    if args.partitions != "1" or args.cluster:
        from bench import e2e_partitions

        return e2e_partitions.main(args)
    phases, fixed = run(args)
    report(phases, fixed, args)
    return 1 if any(p.lost for p in [*phases, *fixed]) else 0


if __name__ == "__main__":
    raise SystemExit(main())
