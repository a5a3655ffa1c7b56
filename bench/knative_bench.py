"""The Knative path against the worker path: the same backlog drained both ways, in one run.

Run: ``python -m bench.knative_bench [--events 10000] [--instances 1,2] [--quick]``
(also ``python -m bench.e2e_bench --mode knative``).

The load is the one the Knative issue measured: ``--events`` accepted events
(10,000) published into the events stream first (as ingest would have, in
100-event batches), three ``contains`` rules, about 12% of the events raising
an alert, the file sink, audit on. Then, in a fresh namespace per path:

- **worker**: ``mutt worker alert``, ``mutt worker forward``, ``mutt worker audit``;
- **knative xN**: ``mutt serve alert`` and ``mutt serve forward`` with N instances
  each, fed by ``mutt relay`` (its defaults: window 8, batches of 100), and
  ``mutt worker audit``. An instance is a gunicorn worker process with 8
  threads, as a pod of knative/base runs it (``containerConcurrency: 8``); N of
  them share one port, as N pods share the activator's address (minus that
  hop). With the relay's window of 8 and the autoscaling target of 6, Knative
  runs 2 pods of each function.

Each path drains the backlog; the time is from its first entry to every
group drained (events handled, alerts delivered, audit rows written),
measured after every consumer is up (groups created, rules loaded): the
backlog is published (as ingest would, 100 entries per batch) and drained,
after a small warm-up backlog has gone through every process.
Reported: events/s and the ratio to the worker path of the same run, alerts
delivered, lost and doubled (alert ids at the
sink against the ones the rules must raise), and the CPU of each process per
event. The machine is shared: compare ratios, not absolute numbers.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import redis

from bench.common import (
    Child,
    child_env,
    children,
    free_port,
    has_group,
    log,
    mutt_argv,
    pg_schema,
    print_table,
    redis_cpu_seconds,
    redis_namespace,
    scratch_dir,
    server_urls,
    tree_cpu_seconds,
    wait_http,
    wait_until,
)
from functions.alert.catalog import insert_catalog, parse_catalog
from mutt.db.migrate import migrate
from shared.broker import streams
from shared.broker.keys import Keys
from shared.broker.stages import consumed
from shared.db.connection import connect_pg
from shared.dynconfig import DynamicConfig
from shared.envelope import FIELD, encode_new
from shared.models import TYPE_ACCEPTED, Event, Severity, event_id_for, utcnow

RULES = {
    "rules": [
        {
            "match_type": "contains",
            "match_string": needle,
            "priority": 10 + n,
            "prod_handling": "Page_and_ticket",
            "dev_handling": "Ticket_only",
            "team_assignment": "NetOps",
        }
        for n, needle in enumerate(("changed state to down", "fan failure", "BGP neighbor down"))
    ]
}
TRIGGERS = (
    "%LINK-3-UPDOWN: Interface Gi0/{n}, changed state to down",
    "%ENVMON-2-FAN: fan failure in tray {n}",
    "%BGP-5-ADJCHANGE: BGP neighbor down 10.0.{n}.1",
)
QUIET = "%SYS-5-CONFIG_I: Configured from console by admin on vty{n}"


@dataclass
class Result:
    path: str
    events: int
    seconds: float = 0.0
    alerts: int = 0
    expected: int = 0
    doubled: int = 0
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def backlog(n: int, prefix: str) -> tuple[list[bytes], int]:
    """``n`` accepted events, every eighth one a rule's trigger; (entries, alerts expected)."""
    entries = []
    expected = 0
    now = utcnow()
    for i in range(n):
        alarm = i % 8 == 0
        message = (TRIGGERS[i % 3] if alarm else QUIET).format(n=i % 50)
        expected += alarm
        source, ce_id = "/bench/knative", f"{prefix}-{i}"
        event = Event(
            event_id=event_id_for(source, ce_id),
            source=source,
            id=ce_id,
            hostname=f"edge-{i % 500}",
            time=now,
            message=message,
            severity=Severity.ERROR,
            severity_name="error",
            source_type="syslog",
            received_at=now,
        )
        entries.append(encode_new(TYPE_ACCEPTED, "/mutt/ingest", event, id=str(event.event_id)))
    return entries, expected


@dataclass(frozen=True)
class Shape:
    """How the Knative path is run: relay window and batch, each function's gunicorn."""

    window: int = 8
    batch: int = 100
    workers: int = 1  # gunicorn workers per instance
    threads: int = 8


def drain(
    label: str,
    entries: list[bytes],
    expected: int,
    instances: int,
    quick: bool,
    shape: Shape = Shape(),
) -> Result:
    """One path, in a namespace and schema of its own."""
    redis_url, database_url = server_urls()
    result = Result(label, len(entries), expected=expected)
    with (
        redis_namespace(redis_url, "kn") as ns,
        pg_schema(database_url, "kn") as schema,
        scratch_dir("kn") as tmp,
        children() as kids,
    ):
        r = redis.Redis.from_url(redis_url)
        keys = Keys(ns)
        conn = connect_pg(database_url, schema)
        migrate(conn)
        insert_catalog(conn, r, ns, parse_catalog(RULES))
        conn.close()
        dyn = DynamicConfig(r, keys.config)
        dyn.set("forward_rate_limit", "0")  # measure the path, not the limiter
        dyn.set("unhandled_threshold", "10000000")
        sink = tmp / "alerts.jsonl"
        env = child_env(
            redis_url=redis_url,
            database_url=database_url,
            database_schema=schema,
            namespace=ns,
            sink_file=str(sink),
            data_dir=str(tmp),
            log_level="WARNING",
            worker_block_ms="100",
        )
        env |= {"MUTT_RELAY_WINDOW": str(shape.window), "MUTT_RELAY_BATCH_SIZE": str(shape.batch)}
        with _consumers(label, instances, env, tmp, kids, shape):
            # every consumer up (groups created, rules loaded), then the backlog arrives
            wait_until(
                lambda: all(has_group(r, s, g) for s, g in consumed(keys)), 60, 0.05, "groups"
            )
            # warm every process (imports, rules, connections) with a small backlog first
            warm, _ = backlog(400, f"warm{time.time_ns()}")
            streams.publish(r, keys.events, [{FIELD: e} for e in warm])
            wait_until(
                lambda: all(streams.drained(r, s, g) for s, g in consumed(keys)),
                120,
                0.05,
                f"{label} warm-up drained",
            )
            offset = sink.stat().st_size if sink.exists() else 0  # the warm-up's alerts
            cpu_before = tree_cpu_seconds({c.name: c.pid for c in kids})
            cpu_before["redis-server"] = redis_cpu_seconds(r)
            started = time.perf_counter()
            for start in range(0, len(entries), 100):  # as ingest publishes: 100 per batch
                streams.publish(r, keys.events, [{FIELD: e} for e in entries[start : start + 100]])
            wait_until(
                lambda: all(streams.drained(r, s, g) for s, g in consumed(keys)),
                600 if not quick else 180,
                0.05,
                f"{label} drained",
            )
            result.seconds = time.perf_counter() - started
            after = tree_cpu_seconds({c.name: c.pid for c in kids})
            after["redis-server"] = redis_cpu_seconds(r)
            result.cpu = {name: after[name] - cpu_before.get(name, 0.0) for name in after}
        lines = [x for x in sink.read_bytes()[offset:].splitlines() if x.strip()]
        ids = [str(orjson.loads(line)["alert_id"]) for line in lines]
        result.alerts = len(set(ids))
        result.doubled = len(ids) - len(set(ids))
        r.close()
    log(f"{label}: {result.rate:,.0f} events/s, {result.alerts} alerts")
    return result


@contextmanager
def _consumers(
    label: str, instances: int, env: dict[str, str], tmp: Path, kids: list[Child], shape: Shape
) -> Iterator[None]:
    kids.append(Child("audit", mutt_argv("worker", "audit"), env, tmp))
    if label == "worker":
        for stage in ("alert", "forward"):
            kids.append(Child(stage, mutt_argv("worker", stage), env, tmp))
        yield
        return
    ports: dict[str, int] = {}
    for stage in ("alert", "forward"):
        port = free_port()
        # N instances: N gunicorn worker processes on one port, as N pods behind the
        # activator (each THREADS threads, like containerConcurrency), minus that hop.
        fn_env = {**env, "WORKERS": str(instances * shape.workers), "THREADS": str(shape.threads)}
        child = Child(stage, mutt_argv("serve", stage, "--port", str(port)), fn_env, tmp)
        kids.append(child)
        wait_http(f"http://127.0.0.1:{port}/healthz", child, 60)
        ports[stage] = port
    argv = mutt_argv(
        "relay",
        "--to",
        f"alert=http://127.0.0.1:{ports['alert']}/",
        "--to",
        f"forward=http://127.0.0.1:{ports['forward']}/",
    )
    kids.append(Child("relay", argv, env, tmp))
    yield


def report(results: Sequence[Result]) -> None:
    base = results[0].rate or 1.0
    rows = [
        (
            r.path,
            f"{r.rate:,.0f}",
            f"{r.rate / base:.2f}x",
            f"{r.alerts}/{r.expected}",
            r.expected - r.alerts,
            r.doubled,
            f"{r.seconds:.1f}",
        )
        for r in results
    ]
    print_table(
        f"drain {results[0].events:,} events: worker path vs Knative path (same run)",
        ["path", "events/s", "vs worker", "alerts", "lost", "doubled", "seconds"],
        rows,
    )
    names = sorted({name.split("-")[0] for r in results for name in r.cpu})
    cpu_rows = []
    for r in results:
        per: dict[str, float] = {}
        for name, seconds in r.cpu.items():
            per[name.split("-")[0]] = per.get(name.split("-")[0], 0.0) + seconds
        total = sum(per.values())
        cpu_rows.append(
            (
                r.path,
                *(f"{per.get(n, 0.0) / r.events * 1e6:,.0f}" for n in names),
                f"{total / r.events * 1e6:,.0f}",
            )
        )
    print_table("CPU per event, µs, by process", ["path", *names, "total"], cpu_rows)


def run(
    events: int, instances: Sequence[int], quick: bool, shape: Shape, repeat: int
) -> list[Result]:
    """Every path ``repeat`` times, interleaved (a noisy neighbour hits all alike); medians."""
    entries, expected = backlog(events, f"kn{time.time_ns()}")
    runs: dict[str, list[Result]] = {}
    for _ in range(repeat):
        runs.setdefault("worker", []).append(drain("worker", entries, expected, 1, quick))
        for n in instances:
            label = f"knative x{n}"
            runs.setdefault(label, []).append(drain(label, entries, expected, n, quick, shape))
    return [sorted(rs, key=lambda r: r.rate)[len(rs) // 2] for rs in runs.values()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--knative-events", type=int, default=10_000, help="backlog to drain")
    parser.add_argument(
        "--instances", default="1,2", help="function instances per Knative run (default 1,2)"
    )
    parser.add_argument("--window", type=int, default=8, help="relay requests in flight per stage")
    parser.add_argument("--batch", type=int, default=100, help="entries per relay request")
    parser.add_argument(
        "--fn", default="1x8", help="each instance's gunicorn WORKERSxTHREADS (default 1x8)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per path; medians shown")


def main_from(args: argparse.Namespace) -> int:
    events = 2_000 if args.quick else args.knative_events
    instances = [int(x) for x in str(args.instances).split(",") if x.strip()]
    workers, _, threads = str(args.fn).partition("x")
    shape = Shape(args.window, args.batch, int(workers), int(threads or 1))
    report(run(events, instances, args.quick, shape, 1 if args.quick else args.repeat))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add_arguments(parser)
    parser.add_argument("--quick", action="store_true", help="2,000 events (< 1 min)")
    return main_from(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
