"""Cold start: process start to first handled event, per function, with 10,000 rules warm.

Baselines measured in the same run: a bare interpreter (``python -c pass``)
and one importing the packages every function needs (the import floor).
Also: the in-process time to warm the rule cache from PostgreSQL, and the
resident memory of each function after its first event. The alert worker
and the in-process warm-up are measured twice: with nothing cached (the
first start anywhere) and with the regex literal analyses an earlier start
left in Redis (any later start: another replica, a scale from zero).

    python -m bench.coldstart_bench [--rules 10000] [--runs 3] [--quick]

Needs MUTT_REDIS_URL and MUTT_DATABASE_URL (real servers).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import orjson
import redis
import requests

from bench.rules_bench import Generator
from functions.alert.cache import RuleCache, bump_version
from functions.alert.literal_cache import cache_key
from functions.alert.rules.literals import required_literals
from functions.alert.rules.regex import compile_regex
from mutt.db.migrate import migrate
from shared.broker import streams
from shared.config import load_settings
from shared.db.connection import connect_pg
from shared.envelope import FIELD, encode

IMPORT_FLOOR = (
    "import functions_framework, cloudevents.http, redis, pg8000.native, pydantic, hvac,"
    " prometheus_client, opentelemetry.trace"
)


_CACHED = {False: "nothing cached", True: "analyses in Redis"}


def _forget(r: redis.Redis, namespace: str, *, keep_shared: bool) -> None:
    """Drop this process's regex caches and, unless ``keep_shared``, the Redis-shared analyses.

    A first start anywhere finds nothing; a later one (another replica, a
    scale-from-zero) finds the literal analyses an earlier start stored.
    """
    required_literals.cache_clear()
    compile_regex.cache_clear()
    if not keep_shared:
        r.delete(cache_key(namespace))


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _time_cmd(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - started


def load_rules(url: str, schema: str, count: int) -> None:
    conn = connect_pg(url, schema)
    migrate(conn)
    rules, _ = Generator(7).rules(count)
    rows = [
        (
            r.match_type.value,
            r.match_string,
            r.trap_oid,
            int(r.syslog_severity) if r.syslog_severity is not None else None,
            r.priority,
        )
        for r in rules
    ]
    conn.run("BEGIN")
    for chunk in range(0, len(rows), 500):
        part = rows[chunk : chunk + 500]
        params: dict[str, object] = {}
        values = []
        for i, row in enumerate(part):
            names = [f"a{i}", f"b{i}", f"c{i}", f"d{i}", f"e{i}"]
            params.update(dict(zip(names, row, strict=True)))
            values.append(
                f"(:{names[0]}, :{names[1]}, :{names[2]}, :{names[3]}, :{names[4]},"
                " 'Page_and_ticket', 'Ticket_only', 'NetOps')"
            )
        conn.run(
            "INSERT INTO alert_rules (match_type, match_string, trap_oid, syslog_severity,"
            " priority, prod_handling, dev_handling, team_assignment) VALUES "
            + ", ".join(values),  # placeholders only: every value is a parameter
            **params,
        )
    conn.run("COMMIT")
    conn.close()


def first_event(
    env: dict[str, str], argv: list[str], done: Callable[[], bool], timeout: float = 60
) -> tuple[float, int]:
    """Seconds from Popen to ``done()``, and the process RSS then (KiB)."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done():
                elapsed = time.perf_counter() - started
                return elapsed, _rss_kib(proc.pid)
            if proc.poll() is not None:
                raise RuntimeError(f"{argv} exited with {proc.returncode}")
            time.sleep(0.002)
        raise RuntimeError(f"{argv}: no first event within {timeout}s")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rules", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1,000 rules, one run")
    args = parser.parse_args(argv)
    if args.quick:
        args.rules, args.runs = 1_000, 1
    base = load_settings()
    redis_url, db_url = base.require_urls()
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    settings = load_settings(
        redis_url=redis_url,
        database_url=db_url,
        database_schema=schema,
        namespace=namespace,
        data_dir=Path(f"/tmp/{namespace}"),
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUTT_")}
    for name, value in settings.model_dump(exclude_none=True).items():
        env[f"MUTT_{name.upper()}"] = str(value)
    r = redis.Redis.from_url(redis_url)
    py = sys.executable
    results: dict[str, list[float]] = {}
    rss: dict[str, int] = {}
    try:
        _log(f"loading {args.rules} rules into {schema}")
        load_rules(db_url, schema, args.rules)
        bump_version(r, namespace)
        from shared.broker.keys import Keys

        keys = Keys(namespace)
        for run in range(args.runs):
            _log(f"run {run + 1}/{args.runs}")
            results.setdefault("python -c pass", []).append(_time_cmd([py, "-c", "pass"]))
            results.setdefault("import floor", []).append(_time_cmd([py, "-c", IMPORT_FLOOR]))
            for shared in (False, True):
                _forget(r, namespace, keep_shared=shared)
                cache = RuleCache(lambda: connect_pg(db_url, schema), r, namespace)
                started = time.perf_counter()
                cache.warm()
                name = f"warm {args.rules} rules in-process, {_CACHED[shared]}"
                results.setdefault(name, []).append(time.perf_counter() - started)

            # alert: one event waiting; first alert/audit record = first handled event
            from tests.factories import accepted_event

            for shared in (False, True):
                _forget(r, namespace, keep_shared=shared)
                event = accepted_event(2 * run + shared)
                streams.publish(r, keys.events, [{FIELD: encode(event)}])
                t, mem = first_event(
                    env,
                    [py, "-m", "mutt", "worker", "alert"],
                    lambda: streams.drained(r, keys.events, "alert"),
                )
                name = f"alert worker: start → first event, {_CACHED[shared]}"
                results.setdefault(name, []).append(t)
                rss["alert"] = mem

            # forward: one alert waiting; first delivery report
            from tests.factories import alert_event

            before = r.xlen(keys.delivered) if r.exists(keys.delivered) else 0
            streams.publish(r, keys.alerts, [{FIELD: encode(alert_event(1000 + run))}])

            def delivered(before: int = before) -> bool:
                return (r.xlen(keys.delivered) if r.exists(keys.delivered) else 0) > before

            t, mem = first_event(env, [py, "-m", "mutt", "worker", "forward"], delivered)
            results.setdefault("forward worker: start → first delivery", []).append(t)
            rss["forward"] = mem

            # ingest: first 202 for a POST
            port = 18000 + run
            body = orjson.dumps({"hostname": "h", "message": f"cold {run}"})
            headers = {
                "ce-specversion": "1.0",
                "ce-id": f"c{run}-{uuid.uuid4()}",
                "ce-source": "/b",
                "ce-type": "io.mutt.syslog.v1",
                "content-type": "application/json",
            }

            def accepted(
                port: int = port, body: bytes = body, headers: dict[str, str] = headers
            ) -> bool:
                try:
                    return (
                        requests.post(
                            f"http://127.0.0.1:{port}/", data=body, headers=headers, timeout=1
                        ).status_code
                        == 202
                    )
                except requests.RequestException:
                    return False

            t, mem = first_event(
                {**env, "WORKERS": "1", "THREADS": "1"},
                [py, "-m", "mutt", "serve", "ingest", "--port", str(port)],
                accepted,
            )
            results.setdefault("ingest: start → first 202", []).append(t)
            rss["ingest"] = mem
    finally:
        keys_left = list(r.scan_iter(match=f"{namespace}:*"))
        if keys_left:
            r.delete(*keys_left)
        conn = connect_pg(db_url)
        conn.run(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.close()
    floor = statistics.median(results["import floor"])
    print(f"\nCold start ({args.rules} rules in PostgreSQL; median of {args.runs})")
    print(f"{'measure':<56} {'seconds':>8} {'x import floor':>15}")
    for name, values in results.items():
        med = statistics.median(values)
        print(f"{name:<56} {med:8.3f} {med / floor:15.2f}")
    print("\nResident memory after the first event (KiB)")
    for name, kib in rss.items():
        print(f"{name:<56} {kib:8d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
