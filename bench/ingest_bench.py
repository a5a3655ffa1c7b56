"""Accepted events/s through ``mutt serve ingest`` next to a no-op function on the same gunicorn.

Run: ``python -m bench.ingest_bench [--settings 2x1,1x1,1x4,default] [--seconds 3] [--quick]``.

Both servers are the real thing: ``mutt serve ingest`` and
``python -m functions_framework --source bench/noop_function.py``, i.e.
functions-framework's gunicorn with ``WORKERS``/``THREADS`` from the
environment (``default`` leaves both unset: 1 worker x cpu_count*4 gthreads).
The load comes from a separate process, ``wrk -t1 -c16`` with
``bench/wrk_ingest.lua``, which gives every request fresh event ids (a Lua
counter in ``ce-id`` / ``X-Request-ID`` / the batch body), so dedup never
hides work. Three request shapes:

* ``single``: one binary-mode CloudEvent per request at ``POST /``;
* ``legacy100``: a JSON array of 100 events at ``POST /api/v2/ingest``;
* ``cebatch100``: 100 structured CloudEvents in ``application/cloudevents-batch+json``
  (``MUTT_INGEST_CLOUDEVENTS_BATCH=true``).

Accepted events are the 2xx answers wrk counted times the events per
request; ``in stream`` is the event stream's length afterwards, a check (it
may exceed the accepted count by the requests wrk abandoned at its deadline,
never fall short). Each server is warmed with a 1 s wrk run first. The
ingest rate limit is raised to its maximum (100,000,000 per window) so it is
exercised but never refuses.
The ratio is ingest events/s over no-op events/s for the same setting and
request shape, measured in the same run.
"""

from __future__ import annotations

import argparse
import math
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import redis

from bench.common import (
    Child,
    WrkResult,
    child_env,
    children,
    clear_namespace,
    free_port,
    log,
    machine,
    mutt_argv,
    noop_argv,
    num,
    print_table,
    ratio,
    redis_namespace,
    require_wrk,
    run_wrk,
    scratch_dir,
    server_urls,
    wait_http,
    wait_stable,
)
from bench.data import Generator, ce_pool_lines, cebatch_pool_lines, legacy_pool_lines
from shared.broker.keys import Keys
from shared.dynconfig import DynamicConfig

BATCH = 100


@dataclass(frozen=True)
class Shape:
    """A request shape: the wrk script mode and the events in one request."""

    name: str
    mode: str
    events_per_request: int


SHAPES = (
    Shape("single", "ce", 1),
    Shape("legacy100", "legacy", BATCH),
    Shape("cebatch100", "cebatch", BATCH),
)


@dataclass(frozen=True)
class Setting:
    """gunicorn's WORKERS x THREADS (``None``: functions-framework's default)."""

    workers: int | None
    threads: int | None

    @property
    def label(self) -> str:
        if self.workers is None:
            return f"default ({1}x{(os.cpu_count() or 1) * 4})"
        return f"WORKERS={self.workers} THREADS={self.threads}"

    def env(self) -> dict[str, str]:
        if self.workers is None or self.threads is None:
            return {}
        return {"WORKERS": str(self.workers), "THREADS": str(self.threads)}


def parse_settings(text: str) -> list[Setting]:
    settings = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if part == "default":
            settings.append(Setting(None, None))
            continue
        workers, _, threads = part.partition("x")
        settings.append(Setting(int(workers), int(threads)))
    return settings


@dataclass
class Row:
    setting: Setting
    server: str
    shape: Shape
    result: WrkResult
    events: int  # accepted: 2xx answers x events per request
    published: int | None = None  # ingest: entries in the event stream afterwards

    @property
    def events_per_second(self) -> float:
        return self.events / self.result.seconds if self.result.seconds else 0.0


def write_pools(directory: Path, seed: int) -> dict[str, Path]:
    gen = Generator(seed)
    events = gen.events(4 * BATCH)
    pools = {
        "ce": ce_pool_lines(events[:256]),
        "legacy": legacy_pool_lines(events, BATCH),
        "cebatch": cebatch_pool_lines(events, BATCH),
    }
    paths = {}
    for mode, lines in pools.items():
        paths[mode] = directory / f"pool-{mode}.txt"
        paths[mode].write_text("\n".join(lines) + "\n")
    return paths


def start_server(
    kind: str,
    setting: Setting,
    env: dict[str, str],
    tmp: Path,
    kids: list[Child],
    cpus: str | None,
) -> tuple[Child, str]:
    port = free_port()
    if kind == "ingest":
        argv = mutt_argv("serve", "ingest", "--host", "127.0.0.1", "--port", str(port))
    else:
        argv = noop_argv(port)
    child = Child(f"{kind}-{port}", argv, {**env, **setting.env()}, tmp, cpus)
    kids.append(child)
    url = f"http://127.0.0.1:{port}"
    took = wait_http(url + "/healthz", child)
    log(f"{kind} ({setting.label}) ready on {url} in {took:.1f}s")
    return child, url


def run(args: argparse.Namespace) -> list[Row]:
    require_wrk()
    redis_url, database_url = server_urls()
    settings = parse_settings(args.settings)
    shapes = [s for s in SHAPES if s.name in args.shapes.split(",")]
    server_cpus = wrk_cpus = None
    if args.pin == "split":
        wrk_cpus, server_cpus = "0", f"1-{max(1, (os.cpu_count() or 2) - 1)}"
    rows: list[Row] = []
    r = redis.Redis.from_url(redis_url)
    with (
        redis_namespace(redis_url, "ingest") as ns,
        scratch_dir("ingest") as tmp,
    ):
        keys = Keys(ns)
        DynamicConfig(r, keys.config).set("ingest_rate_limit", "100000000")
        pools = write_pools(tmp, args.seed)
        base_env = child_env(
            redis_url=redis_url,
            database_url=database_url,
            namespace=ns,
            ingest_cloudevents_batch="true",
            log_level="ERROR",
        )
        for setting in settings:
            with children() as kids:
                # both servers up at once, measured alternately: a neighbour's load
                # drifting during the run weighs on the no-op and ingest alike
                servers = {
                    kind: start_server(kind, setting, base_env, tmp, kids, server_cpus)
                    for kind in ("noop", "ingest")
                }
                if args.warmup > 0:  # every code path once, then the timed runs
                    for _, url in servers.values():
                        warm = f"w{uuid.uuid4().hex[:8]}-"
                        run_wrk(url, ["cebatch", warm, str(pools["cebatch"])], seconds=args.warmup)
                for shape in shapes:
                    runs: dict[str, list[Row]] = {kind: [] for kind in servers}
                    for _ in range(args.rounds):
                        for kind, (child, url) in servers.items():
                            runs[kind].append(
                                measure(
                                    args, r, keys, child, url, kind, setting, shape, pools, wrk_cpus
                                )
                            )
                    for kind_runs in runs.values():  # the median run of each server
                        kind_runs.sort(key=lambda row: row.events_per_second)
                        rows.append(kind_runs[len(kind_runs) // 2])
        r.close()
    return rows


def measure(
    args: argparse.Namespace,
    r: redis.Redis,
    keys: Keys,
    child: Child,
    url: str,
    kind: str,
    setting: Setting,
    shape: Shape,
    pools: dict[str, Path],
    wrk_cpus: str | None,
) -> Row:
    pool = str(pools[shape.mode])

    def stream_length() -> int:
        return int(r.xlen(keys.events))

    wait_stable(stream_length)  # what earlier runs left in flight lands first
    clear_namespace(r, keys.namespace, keep=[keys.config])
    child.check()
    prefix = f"m{uuid.uuid4().hex[:8]}-"
    result = run_wrk(
        url,
        [shape.mode, prefix, pool],
        seconds=args.seconds,
        connections=args.connections,
        cpus=wrk_cpus,
    )
    child.check()
    good = max(0, result.requests - result.bad_status - result.errors)
    events = good * shape.events_per_request
    published = None
    if kind == "ingest":
        published = wait_stable(stream_length)
        # wrk counts the answers it got before its deadline; the <= 16 requests it
        # abandoned may still be published: more is expected, fewer would be a loss
        extra = published - events
        if not 0 <= extra <= args.connections * shape.events_per_request:
            log(f"  WARNING: {published:,} events in the stream for {events:,} accepted")
        clear_namespace(r, keys.namespace, keep=[keys.config])
    row = Row(setting, kind, shape, result, events, published)
    log(
        f"  {kind:6} {setting.label:26} {shape.name:10} {result.rps:9,.0f} req/s "
        f"{row.events_per_second:10,.0f} events/s  p50 {result.p50_ms:.2f} ms "
        f"p99 {result.p99_ms:.2f} ms  errors {result.errors + result.bad_status}"
    )
    return row


def report(rows: Sequence[Row]) -> None:
    noop = {(row.setting, row.shape.name): row for row in rows if row.server == "noop"}
    table = []
    for row in rows:
        base = noop.get((row.setting, row.shape.name))
        table.append(
            [
                row.setting.label,
                row.server,
                row.shape.name,
                row.shape.events_per_request,
                num(row.result.rps),
                num(row.events_per_second),
                "-" if row.published is None else f"{row.published:,}",
                f"{row.result.p50_ms:.2f}",
                f"{row.result.p99_ms:.2f}",
                row.result.errors + row.result.bad_status,
                ratio(row.events_per_second, base.events_per_second if base else None)
                if row.server == "ingest"
                else "1.00x",
            ]
        )
    print(f"machine: {machine()}")
    print_table(
        "ingest vs no-op function (same gunicorn, wrk -t1 -c16)",
        [
            "setting",
            "server",
            "request",
            "ev/req",
            "req/s",
            "events/s",
            "in stream",
            "p50 ms",
            "p99 ms",
            "errors",
            "vs no-op",
        ],
        table,
    )
    ingest = [row for row in rows if row.server == "ingest"]
    if not ingest:
        return
    print()
    for shape in {row.shape.name: row.shape for row in ingest}.values():
        ranked = sorted(
            (row for row in ingest if row.shape == shape),
            key=lambda x: x.events_per_second,
            reverse=True,
        )
        print(
            f"best for {shape.name}: {ranked[0].setting.label} "
            f"({ranked[0].events_per_second:,.0f} events/s){_margin(ranked)}"
        )
    by_setting: dict[Setting, list[float]] = {}
    for row in ingest:
        by_setting.setdefault(row.setting, []).append(max(row.events_per_second, 1e-9))
    means = sorted(
        (
            (math.exp(math.fsum(math.log(v) for v in vs) / len(vs)), st)
            for st, vs in by_setting.items()
        ),
        key=lambda item: item[0],
        reverse=True,
    )
    line = f"best overall (geometric mean of events/s over request shapes): {means[0][1].label}"
    if len(means) > 1:
        lead = means[0][0] / means[1][0] - 1
        line += f", {lead:.0%} ahead of {means[1][1].label}"
    print(line)


def _margin(ranked: Sequence[Row]) -> str:
    """How far ahead the winner is; a lead under 15% is within this machine's noise."""
    if len(ranked) < 2 or not ranked[1].events_per_second:
        return ""
    lead = ranked[0].events_per_second / ranked[1].events_per_second - 1
    noise = " (within noise)" if lead < 0.15 else ""
    return f", {lead:.0%} ahead of {ranked[1].setting.label}{noise}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--settings",
        default="2x1,1x1,1x4,default",
        help="WORKERSxTHREADS list; 'default' = functions-framework's own (default: %(default)s)",
    )
    parser.add_argument("--shapes", default=",".join(s.name for s in SHAPES))
    parser.add_argument("--seconds", type=float, default=3.0, help="wrk duration per run")
    parser.add_argument(
        "--warmup", type=float, default=1.0, help="wrk warm-up per server (0 = none)"
    )
    parser.add_argument(
        "--pin",
        choices=["none", "split"],
        default="none",
        help="split: wrk on CPU 0, the server on the other CPUs"
        " (docs/reference/building-blocks.md §0)",
    )
    parser.add_argument("--connections", type=int, default=16, help="wrk -c (default 16)")
    parser.add_argument(
        "--rounds", type=int, default=1, help="runs per cell; the median is shown (default 1)"
    )
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--quick", action="store_true", help="one setting, 1 s runs (< 20 s)")
    args = parser.parse_args(argv)
    if args.quick:
        args.settings, args.seconds, args.warmup = "2x1", 1.0, 0.0
    report(run(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
