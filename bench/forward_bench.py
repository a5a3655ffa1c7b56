"""Deliveries/s through the forward StreamWorker + Deliverer, rate limiter off and on, none lost.

Run: ``python -m bench.forward_bench [--alerts 10000] [--limit 2000] [--quick]``.

``--alerts`` distinct alerts are published to the alerts stream of a private
namespace, then one in-process ``StreamWorker`` (group ``forward``) drives
the real ``Deliverer`` until the stream is drained (read, acknowledged and
nothing parked). Two sinks: the file sink (JSON lines, fsync per batch) and
a webhook sink POSTing to a local receiver in a separate process
(``bench/webhook_sink.py``). Each runs with the rate limiter off
(``forward_rate_limit=0`` in the namespace's dynamic config) and on
(``--limit`` per ``forward_rate_window_ms``, 1 s by default).

The baseline, measured right before each case (a noisy neighbour then
weighs on both), is the sink alone: ``sink.send`` called in a loop on the
first ``--baseline-alerts`` of the same alerts (file: with the same fsync
per 100), no Redis, no engine. ``lost`` counts published alert ids absent at the sink
(must be 0), ``dup`` receipts beyond the first per alert id.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson
import redis
import requests

from bench.common import (
    Child,
    child_env,
    children,
    clear_namespace,
    free_port,
    log,
    machine,
    num,
    print_table,
    ratio,
    redis_namespace,
    scratch_dir,
    server_urls,
    wait_http,
)
from bench.data import accepted_events
from functions.forward.delivery import Deliverer
from functions.forward.routing import Router
from functions.forward.sinks.base import Sink
from functions.forward.sinks.file import FileSink
from functions.forward.sinks.http import HttpSession
from functions.forward.sinks.webhook import WebhookSink
from mutt.runtime.worker import StreamWorker
from shared.broker import streams
from shared.broker.keys import GROUP_FORWARD, Keys
from shared.config import load_settings
from shared.dynconfig import DynamicConfig
from shared.envelope import FIELD, encode, make_event
from shared.models import (
    TYPE_ALERT,
    Alert,
    Handling,
    Severity,
    alert_id_for,
)

FSYNC_EVERY = 100  # the engine flushes a sink once per batch (MUTT_WORKER_BATCH_SIZE)


@dataclass
class Case:
    sink: str
    limit: int  # forward_rate_limit; 0 = off
    published: int
    seconds: float
    received: int
    unique: int
    dead: int
    baseline: float  # deliveries/s of the sink alone

    @property
    def lost(self) -> int:
        return self.published - self.unique

    @property
    def dup(self) -> int:
        return self.received - self.unique

    @property
    def rate(self) -> float:
        return self.unique / self.seconds if self.seconds else 0.0


def make_alerts(count: int, seed: int) -> list[Alert]:
    alerts = []
    for event in accepted_events("/bench/forward", count, seed):
        alerts.append(
            Alert(
                alert_id=alert_id_for(event.event_id, "rule:1"),
                event_id=event.event_id,
                rule_id=1,
                handling=Handling.PAGE_AND_TICKET,
                team="NetOps",
                environment="prod",
                severity=Severity.ERROR,
                severity_name="error",
                summary=f"{event.hostname}: {event.message[:500]}",
                dedup_key=f"mutt:1:{event.hostname}",
                raised_at=event.received_at,
                event=event,
            )
        )
    return alerts


def publish(r: redis.Redis, stream: str, alerts: Sequence[Alert]) -> None:
    bodies = [encode(make_event(TYPE_ALERT, "/mutt/alert", a, id=str(a.alert_id))) for a in alerts]
    for start in range(0, len(bodies), 1000):
        streams.publish(r, stream, [{FIELD: b} for b in bodies[start : start + 1000]])


def sink_alone(sink: Sink, alerts: Sequence[Alert]) -> float:
    """Deliveries/s of ``sink.send`` in a loop (the file sink fsynced every 100)."""
    flush = getattr(sink, "flush", None)
    started = time.perf_counter()
    for n, alert in enumerate(alerts, 1):
        sink.send(alert)
        if callable(flush) and n % FSYNC_EVERY == 0:
            flush()
    if callable(flush):
        flush()
    return len(alerts) / (time.perf_counter() - started)


def drive(worker: StreamWorker, r: redis.Redis, keys: Keys, timeout: float) -> float:
    """Run the worker until the alerts stream is drained; return the seconds it took."""
    started = time.perf_counter()
    deadline = started + timeout
    last_check = 0.0
    while True:
        handled = worker.run_once()
        now = time.perf_counter()
        if handled == 0 or now - last_check > 0.25:
            last_check = now
            if streams.drained(r, keys.alerts, GROUP_FORWARD):
                return time.perf_counter() - started
        if now > deadline:
            raise RuntimeError(f"the alerts stream was not drained within {timeout:.0f}s")


def file_ids(path: Path) -> list[str]:
    return [str(orjson.loads(line)["alert_id"]) for line in path.read_bytes().splitlines() if line]


def run_case(
    *,
    r: redis.Redis,
    ns: str,
    redis_url: str,
    sink_name: str,
    make_sink: Callable[[], Sink],
    received_ids: Callable[[], list[str]],
    alerts: Sequence[Alert],
    limit: int,
    baseline: float,
) -> Case:
    keys = Keys(ns)
    clear_namespace(r, ns)
    dyn = DynamicConfig(r, keys.config)
    dyn.set("forward_rate_limit", str(limit))
    settings = load_settings(
        {}, redis_url=redis_url, namespace=ns, worker_block_ms=50, log_level="WARNING"
    )
    sink = make_sink()
    deliverer = Deliverer(r, keys, {sink_name: sink}, Router([], [sink_name]), dyn)
    worker = StreamWorker(r, keys, settings, deliverer, keys.alerts, GROUP_FORWARD)
    streams.ensure_group(r, keys.alerts, GROUP_FORWARD)
    publish(r, keys.alerts, alerts)
    expected = len(alerts) / limit if limit else 0.0
    seconds = drive(worker, r, keys, timeout=60 + 3 * expected)
    ids = received_ids()
    wanted = {str(a.alert_id) for a in alerts}
    case = Case(
        sink=sink_name,
        limit=limit,
        published=len(alerts),
        seconds=seconds,
        received=len(ids),
        unique=len(wanted & set(ids)),
        dead=int(r.xlen(keys.dlq(GROUP_FORWARD))),
        baseline=baseline,
    )
    log(
        f"  {sink_name:7} limit {limit or 'off':>5}: {case.rate:8,.0f} deliveries/s, "
        f"lost {case.lost}, dup {case.dup}, dead-lettered {case.dead}"
    )
    return case


def run(args: argparse.Namespace) -> list[Case]:
    redis_url, _ = server_urls()
    log(f"building {args.alerts:,} alerts ...")
    alerts = make_alerts(args.alerts, args.seed)
    sample = alerts[: min(len(alerts), args.baseline_alerts)]
    cases: list[Case] = []
    r = redis.Redis.from_url(redis_url)
    session = requests.Session()
    with (
        redis_namespace(redis_url, "forward") as ns,
        scratch_dir("forward") as tmp,
        children() as kids,
    ):
        port = free_port()
        argv = [sys.executable, "-m", "bench.webhook_sink", "--port", str(port)]
        hook = Child("webhook", argv, child_env(), tmp)
        kids.append(hook)
        hook_url = f"http://127.0.0.1:{port}"
        wait_http(hook_url + "/healthz", hook)

        def hook_ids() -> list[str]:
            doc = session.get(hook_url + "/ids", timeout=30).json()
            return [str(x) for x in doc["ids"]]

        def new_webhook() -> Sink:
            return WebhookSink("webhook", hook_url, session=HttpSession())

        for sink_name in args.sinks.split(","):
            for limit in (0, args.limit):
                # the baseline right before its case: a noisy neighbour hits both alike
                if sink_name == "file":
                    path = tmp / f"sink-{limit}.jsonl"
                    baseline = sink_alone(FileSink(tmp / f"alone-{limit}.jsonl"), sample)
                    make_sink: Callable[[], Sink] = functools.partial(FileSink, path)
                    received: Callable[[], list[str]] = functools.partial(file_ids, path)
                else:
                    baseline = sink_alone(new_webhook(), sample)
                    session.delete(hook_url + "/ids", timeout=30)
                    make_sink, received = new_webhook, hook_ids
                log(f"  {sink_name:7} alone: {baseline:8,.0f} deliveries/s")
                cases.append(
                    run_case(
                        r=r,
                        ns=ns,
                        redis_url=redis_url,
                        sink_name=sink_name,
                        make_sink=make_sink,
                        received_ids=received,
                        alerts=alerts,
                        limit=limit,
                        baseline=baseline,
                    )
                )
    r.close()
    return cases


def report(cases: Sequence[Case]) -> None:
    print(f"machine: {machine()}")
    print_table(
        "forward: StreamWorker + Deliverer vs the sink alone",
        [
            "sink",
            "rate limit",
            "alerts",
            "seconds",
            "deliveries/s",
            "sink alone/s",
            "vs sink alone",
            "lost",
            "dup",
            "dead-lettered",
        ],
        [
            [
                c.sink,
                f"{c.limit:,}/s" if c.limit else "off",
                f"{c.published:,}",
                f"{c.seconds:.2f}",
                num(c.rate),
                num(c.baseline),
                ratio(c.rate, c.baseline),
                c.lost,
                c.dup,
                c.dead,
            ]
            for c in cases
        ],
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--limit", type=int, default=2000, help="rate limit of the 'on' runs, /s")
    parser.add_argument("--sinks", default="file,webhook", help="file, webhook or both")
    parser.add_argument(
        "--baseline-alerts",
        type=int,
        default=3000,
        help="alerts sent by each sink-alone baseline (default %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--quick", action="store_true", help="1,000 alerts (< 20 s)")
    args = parser.parse_args(argv)
    if args.quick:
        args.alerts = min(args.alerts, 1000)
    cases = run(args)
    report(cases)
    return 1 if any(c.lost or c.dead for c in cases) else 0


if __name__ == "__main__":
    raise SystemExit(main())
