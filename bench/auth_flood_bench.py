"""CPU a flood of bad API keys costs ingest, next to the same number of good requests.

Run: ``python -m bench.auth_flood_bench [--requests 20000] [--quick]``.

One ``mutt serve ingest`` (1 worker x 16 threads, as on Knative) with a key
configured. The same load generator (``wrk -t1 -c16`` with
``bench/wrk_ingest.lua``, one binary-mode CloudEvent per request, fresh ids)
sends ``--requests`` requests three times from one address:

* ``good``: the right key: every request is validated, admitted in Redis
  (the rate-limit + dedup + publish script) and answered 202;
* ``bad``: a wrong key: after ``MUTT_INGEST_AUTH_FAILURE_LIMIT`` (20) answers
  401 the address is throttled: its next request on each kept-alive
  connection is answered 429 with ``Connection: close``, and every new
  connection is answered 429 at accept, unread (functions/ingest/worker.py);
* ``bad, no throttle``: a wrong key with the limit raised out of reach (a
  second server), so every request is compared and answered 401: what the
  throttle saves;
* ``bad, behind a proxy``: a wrong key to a server that trusts 127.0.0.0/8 as
  its proxies (as on Knative): nothing is refused at accept, every throttled
  request is read, parsed and answered 429 on its kept-alive connection.

The cost is the CPU seconds (user + system, from /proc) of the ingest
process tree plus Redis's own (``INFO cpu``), measured around each run; the
answers are ingest's own ``mutt_ingest_requests_total`` by status, plus
``mutt_ingest_connections_refused_total`` as 429s. ``/metrics`` is read from
127.0.0.2, another address than the flood's (127.0.0.1 is refused while it is
throttled). The
target (docs/reliability.md): a bad-key flood costs less than 10% of the CPU
of the same number of good requests. Nothing here asserts it: the numbers
are printed next to each other, measured in the same run.
"""

from __future__ import annotations

import argparse
import http.client
import re
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import redis

from bench.common import (
    ROOT,
    Child,
    Wrk,
    child_env,
    children,
    free_port,
    log,
    machine,
    mutt_argv,
    num,
    print_table,
    redis_cpu_seconds,
    redis_namespace,
    require_wrk,
    scratch_dir,
    server_urls,
    tree_cpu_seconds,
    wait_http,
    wait_stable,
)
from bench.data import Generator, ce_pool_lines, legacy_pool_lines
from mutt.embedded import EmbeddedRedis
from shared.broker.keys import Keys
from shared.dynconfig import DynamicConfig

KEY = "bench-" + uuid.uuid4().hex
STATUS = re.compile(r'^mutt_ingest_requests_total\{code="(\d+)",route="(\w+)"\} (\S+)$')
REFUSED = re.compile(r"^mutt_ingest_connections_refused_total (\S+)$")
SCRAPER = "127.0.0.2"  # not the flood's address: a throttled address is refused at accept
BATCH = 100


@dataclass(frozen=True)
class Row:
    name: str
    requests: int
    answers: dict[str, int]
    ingest_cpu: float
    redis_cpu: float
    wrk_cpu: float  # the load generator's: on loopback it also pays the kernel's side of
    # each TCP handshake that a real network would charge to the server

    @property
    def cpu(self) -> float:
        return self.ingest_cpu + self.redis_cpu

    @property
    def us_per_request(self) -> float:
        return self.cpu / self.requests * 1e6 if self.requests else 0.0


def answers(url: str) -> dict[str, int]:
    """Ingest's own count of answers to POST, by status (all routes; connections
    refused at accept are 429s), asked from another address than the flood's."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(
        parts.hostname or "127.0.0.1", parts.port, timeout=10, source_address=(SCRAPER, 0)
    )
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    counts: dict[str, int] = {}
    for line in text.splitlines():
        found = STATUS.match(line)
        if found and found[2] != "other":
            counts[found[1]] = counts.get(found[1], 0) + int(float(found[3]))
        refused = REFUSED.match(line)
        if refused:
            counts["429"] = counts.get("429", 0) + int(float(refused[1]))
    return counts


def start(
    env: dict[str, str], tmp: Path, kids: list[Child], argv: list[str] | None = None, **extra: str
) -> tuple[Child, str]:
    port = free_port()
    if argv is None:
        argv = mutt_argv("serve", "ingest", "--host", "127.0.0.1", "--port", str(port))
    else:
        argv = [*argv, "--bind", f"127.0.0.1:{port}"]
    child = Child(f"server-{port}", argv, {**env, **extra}, tmp)
    kids.append(child)
    url = f"http://127.0.0.1:{port}"
    took = wait_http(url + "/healthz", child)
    log(f"{argv[2]} ready on {url} in {took:.1f}s")
    return child, url


def busy_until_idle(child: Child, wrk: Wrk, quiet: float = 0.5) -> float:
    """Wait until wrk has had all its answers: the server's CPU time stops moving.
    Returns wrk's CPU seconds (read before it exits).

    wrk stops sending after its request limit but sleeps until its duration
    ends; asking the server (``/metrics``) would add to what is measured, so
    the server's CPU counter, read from /proc at no cost to it, tells instead.
    """
    time.sleep(quiet)
    wait_stable(lambda: round(tree_cpu_seconds({"s": child.pid})["s"] * 100), quiet, 600)
    wrk_cpu = tree_cpu_seconds({"wrk": wrk.proc.pid})["wrk"]
    wrk.interrupt()
    return wrk_cpu


@dataclass(frozen=True)
class Load:
    name: str
    mode: str  # of bench/wrk_ingest.lua: ce (1 event) or legacy (a batch)
    key: str
    metrics: bool = True  # the server counts its answers (not the floor)


def measure(
    load: Load, child: Child, url: str, r: redis.Redis, pools: dict[str, Path], n: int
) -> Row:
    before_answers = answers(url) if load.metrics else {}
    before = tree_cpu_seconds({"server": child.pid})["server"]
    before_redis = redis_cpu_seconds(r)
    prefix = uuid.uuid4().hex[:8]
    wrk = Wrk(url, [load.mode, prefix, str(pools[load.mode]), str(n), load.key], seconds=600)
    wrk_cpu = busy_until_idle(child, wrk)
    result = wrk.result()
    server_cpu = tree_cpu_seconds({"server": child.pid})["server"] - before
    redis_cpu = redis_cpu_seconds(r) - before_redis
    if load.metrics:
        after = answers(url)
        got = {code: after.get(code, 0) - before_answers.get(code, 0) for code in after}
        got = {code: count for code, count in got.items() if count}
    else:
        got = {"429": result.requests}
    log(
        f"{load.name}: {result.requests} requests in {result.seconds:.1f}s, answers {got},"
        f" wrk errors {result.errors}"
    )
    return Row(load.name, sum(got.values()), got, server_cpu, redis_cpu, wrk_cpu)


GOOD = Load("good, 1 event/request", "ce", KEY)
GOOD_BATCH = Load(f"good, {BATCH} events/request", "legacy", KEY)
BAD = Load("bad key (throttled)", "ce", "wrong-key")
BAD_LOOSE = Load("bad key, no throttle", "ce", "wrong-key")
BAD_PROXIED = Load("bad key (throttled), behind a proxy", "ce", "wrong-key")
FLOOR = Load("floor: gunicorn, empty answer", "ce", "wrong-key", metrics=False)


def run(args: argparse.Namespace) -> list[Row]:
    require_wrk()
    _, database_url = server_urls()  # named in the settings; ingest never opens it
    rows = []
    with scratch_dir("authflood") as tmp:
        private = EmbeddedRedis(tmp)  # Redis's CPU is then only this benchmark's
        redis_url = private.start()
        r = redis.Redis.from_url(redis_url)
        try:
            with redis_namespace(redis_url, "authflood") as namespace, children() as kids:
                rows = loads(args.requests, redis_url, database_url, namespace, r, tmp, kids)
        finally:
            r.close()
            private.stop()
    return rows


def loads(
    n: int,
    redis_url: str,
    database_url: str,
    namespace: str,
    r: redis.Redis,
    tmp: Path,
    kids: list[Child],
) -> list[Row]:
    DynamicConfig(r, Keys(namespace).config).set("ingest_rate_limit", "100000000")
    events = Generator(7).events(4 * BATCH)
    pools = {"ce": tmp / "pool-ce.txt", "legacy": tmp / "pool-legacy.txt"}
    pools["ce"].write_text("\n".join(ce_pool_lines(events[:256])) + "\n")
    pools["legacy"].write_text("\n".join(legacy_pool_lines(events, BATCH)) + "\n")
    env = child_env(
        redis_url=redis_url,
        database_url=database_url,
        namespace=namespace,
        WORKERS="1",
        THREADS="16",
        MUTT_SECRET_INGEST_API_KEYS=KEY,
    )
    warm = max(200, n // 10)
    rows = []
    child, url = start(env, tmp, kids)
    measure(Load("warm-up", "ce", KEY), child, url, r, pools, warm)
    rows.append(measure(GOOD, child, url, r, pools, n))
    rows.append(measure(GOOD_BATCH, child, url, r, pools, max(1, n // 10)))
    rows.append(measure(BAD, child, url, r, pools, n))
    child.stop()
    kids.remove(child)
    loose, loose_url = start(env, tmp, kids, MUTT_INGEST_AUTH_FAILURE_LIMIT="100000")
    measure(Load("warm-up", "ce", KEY), loose, loose_url, r, pools, warm)
    rows.append(measure(BAD_LOOSE, loose, loose_url, r, pools, n))
    loose.stop()
    kids.remove(loose)
    proxied, proxied_url = start(env, tmp, kids, MUTT_INGEST_TRUSTED_PROXIES="127.0.0.0/8")
    measure(Load("warm-up", "ce", KEY), proxied, proxied_url, r, pools, warm)
    rows.append(measure(BAD_PROXIED, proxied, proxied_url, r, pools, n))
    proxied.stop()
    kids.remove(proxied)
    gunicorn = [sys.executable, "-m", "gunicorn", "-k", "gthread", "-w", "1", "--threads", "16"]
    floor_argv = [*gunicorn, "--chdir", str(ROOT), "bench.empty_wsgi:app"]
    floor, floor_url = start(env, tmp, kids, floor_argv)
    rows.append(measure(FLOOR, floor, floor_url, r, pools, n))
    return rows


def report(rows: Sequence[Row]) -> None:
    good = next(row for row in rows if row.name == GOOD.name)
    batch = next(row for row in rows if row.name == GOOD_BATCH.name)

    def share(row: Row, base: Row) -> str:
        """CPU of this load's requests over CPU of as many ``base`` requests."""
        if not base.us_per_request:
            return "n/a"
        return f"{row.us_per_request / base.us_per_request:.0%}"

    print(f"\nmachine: {machine()}")
    print_table(
        "bad-key flood vs good requests (ingest 1x16, wrk -t1 -c16, one address)",
        [
            "load",
            "requests",
            "answers",
            "server CPU s",
            "Redis CPU s",
            "CPU us/req",
            "vs good",
            f"vs good x{BATCH}",
            "wrk CPU us/req",
        ],
        [
            [
                row.name,
                num(row.requests),
                " ".join(f"{code}:{count}" for code, count in sorted(row.answers.items())),
                num(row.ingest_cpu, 2),
                num(row.redis_cpu, 2),
                num(row.us_per_request),
                share(row, good),
                share(row, batch),
                num(row.wrk_cpu / row.requests * 1e6 if row.requests else 0.0),
            ]
            for row in rows
        ],
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000, help="requests per load")
    parser.add_argument("--quick", action="store_true", help="2,000 requests per load")
    args = parser.parse_args(argv)
    if args.quick:
        args.requests = 2_000
    report(run(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
