"""Cold start: process start to first answer, per function, with 10,000 rules in PostgreSQL.

The row that matters for Knative's scale from zero: a just-started
``mutt serve alert`` (functions-framework + gunicorn, as Knative runs it)
gets its first POST the moment it accepts connections; measured are
start → listening, listening → answer (the gunicorn worker's boot, the
handler's build with its rule load, the event) and the whole. Then
``mutt worker alert``, start → first event handled. Both in two states:
the compiled rule index in Redis (every start after the first with the same
rules: a scale from zero, another replica) and nothing cached (the first
start anywhere: no compiled index, no regex analyses).

Baselines in the same run: a bare interpreter, the named packages' import
floor (the ratio column), and the imports of each process alone. Also: the
rule load in-process in three states, the resident memory after the first
answer, the CPU each process used (start to exit), and the heaviest imports
of ``mutt serve alert`` (``python -X importtime``). The cases of a run are
interleaved, so a noisy neighbour hits them alike; the table gives medians.

    python -m bench.coldstart_bench [--rules 10000] [--runs 5] [--quick]

Uses MUTT_REDIS_URL / MUTT_DATABASE_URL (default: the local servers).
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson
import redis
import requests
from cloudevents.conversion import to_binary

from bench.common import (
    child_env,
    cpu_idle,
    free_port,
    log,
    machine,
    mutt_argv,
    pg_schema,
    print_table,
    process_cpu_seconds,
    redis_namespace,
    server_urls,
)
from bench.rules_bench import Generator
from functions.alert.cache import RuleCache, bump_version
from functions.alert.index_cache import index_key
from functions.alert.literal_cache import cache_key
from functions.alert.rules.literals import required_literals
from functions.alert.rules.regex import check_regex, compile_regex
from shared.broker import streams
from shared.broker.keys import Keys
from shared.db.connection import connect_pg
from shared.envelope import FIELD, encode
from tests.support.factories import accepted_event, alert_event

IMPORT_FLOOR = (
    "import functions_framework, cloudevents.http, redis, pg8000.native, pydantic, hvac,"
    " prometheus_client, opentelemetry.trace"
)
SERVE_IMPORTS = "import mutt.cli, functions_framework._http, functions.alert.main"
WORKER_IMPORTS = "import mutt.cli, mutt.runtime.worker, mutt.stages, functions.alert.build"

INDEX, NOTHING, ANALYSES = "compiled index in Redis", "nothing cached", "analyses in Redis"


@dataclass(frozen=True)
class Started:
    """One process start: seconds to listening (serve only) and to the first answer;
    then its resident memory and the CPU it had used (gunicorn's worker included)."""

    listening: float | None
    answered: float
    rss_kib: int
    cpu: float


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _worker_pid(pid: int) -> int:
    """The gunicorn worker a ``mutt serve`` master started (the master itself if none)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return pid
    return int(children[0]) if children else pid


def _time_cmd(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - started


def load_rules(url: str, schema: str, count: int) -> None:
    """``count`` generated rules (a third each contains, regex, oid_prefix) in one transaction."""
    conn = connect_pg(url, schema)
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


def matching_message(count: int) -> str:
    """Text that a contains rule without a severity condition matches (the alert is raised)."""
    rules, triggers = Generator(7).rules(count)
    for rule, trigger in zip(rules, triggers, strict=True):
        if rule.match_type.value == "contains" and rule.syslog_severity is None:
            text, _ = trigger()
            return f"cold start: {text} on port 7"
    raise RuntimeError("no contains rule without a severity among the generated rules")


def set_state(r: redis.Redis, namespace: str, state: str) -> None:
    """Make the next start find ``state``: drop what it must not find, here and in Redis.

    ``INDEX`` needs nothing dropped: every start that builds stores the index.
    """
    required_literals.cache_clear()
    compile_regex.cache_clear()
    check_regex.cache_clear()
    if state in (NOTHING, ANALYSES):
        r.delete(index_key(namespace))
    if state == NOTHING:
        r.delete(cache_key(namespace))


def _wait_listening(proc: subprocess.Popen[bytes], port: int, deadline: float) -> None:
    while True:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"mutt serve alert did not listen (exit {proc.returncode})")
        time.sleep(0.001)


def serve_first_answer(env: dict[str, str], message: str, seq: int) -> Started:
    """Start ``mutt serve alert``; POST one event the moment it accepts connections."""
    port = free_port()
    headers, body = to_binary(accepted_event(seq, message))
    started = time.perf_counter()
    proc = subprocess.Popen(
        mutt_argv("serve", "alert", "--host", "127.0.0.1", "--port", str(port)),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            _wait_listening(proc, port, deadline)
            listening = time.perf_counter()
            try:
                url = f"http://127.0.0.1:{port}/"
                resp = requests.post(url, data=body, headers=headers, timeout=60)
            except requests.ConnectionError:
                # `mutt serve` first checks the port is free by listening on it for an
                # instant; a connection that lands then is reset. Wait for gunicorn.
                continue
            answered = time.perf_counter()
            break
        if resp.status_code != 200:
            raise RuntimeError(f"first answer {resp.status_code}: {resp.text[:300]}")
        worker = _worker_pid(proc.pid)
        rss = _rss_kib(worker)
        cpu = sum(process_cpu_seconds(pid) or 0.0 for pid in {proc.pid, worker})
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return Started(listening - started, answered - started, rss, cpu)


def first_event(
    env: dict[str, str], argv: list[str], done: Callable[[], bool], timeout: float = 60
) -> Started:
    """Seconds from Popen to ``done()``, and the process's RSS and CPU then."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        while not done():
            if proc.poll() is not None:
                raise RuntimeError(f"{argv} exited with {proc.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{argv}: no first event within {timeout}s")
            time.sleep(0.002)
        elapsed = time.perf_counter() - started
        worker = _worker_pid(proc.pid)  # mutt serve: gunicorn's worker; mutt worker: itself
        rss = _rss_kib(worker)
        cpu = sum(process_cpu_seconds(pid) or 0.0 for pid in {proc.pid, worker})
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return Started(None, elapsed, rss, cpu)


def import_time_by_package(statement: str, top: int = 12) -> list[tuple[str, float, int]]:
    """(package, ms, modules) of ``statement``'s imports by own time (``-X importtime``, one run).

    Each module's own ("self") time is added to its top-level package, so the
    rows add up to the whole import and nothing is counted twice.
    """
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        check=True,
        capture_output=True,
        text=True,
    )
    spent: dict[str, float] = {}
    modules: dict[str, int] = {}
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, _, name = line.split(":", 1)[1].split("|")
        package = name.strip().split(".")[0]
        spent[package] = spent.get(package, 0.0) + int(own) / 1000
        modules[package] = modules.get(package, 0) + 1
    ranked = sorted(spent.items(), key=lambda item: -item[1])
    rows = [(name, ms, modules[name]) for name, ms in ranked[:top]]
    rest = ranked[top:]
    others = sum(modules[name] for name, _ in rest)
    rows.append((f"{len(rest)} others", sum(ms for _, ms in rest), others))
    rows.append(("total", sum(spent.values()), sum(modules.values())))
    return rows


class Results:
    """Seconds, CPU and RSS per measure, in the order first seen."""

    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = {}
        self.cpu: dict[str, list[float]] = {}
        self.rss: dict[str, list[int]] = {}

    def add(self, name: str, seconds: float, cpu: float | None = None, rss: int = 0) -> None:
        self.seconds.setdefault(name, []).append(seconds)
        if cpu is not None:
            self.cpu.setdefault(name, []).append(cpu)
        if rss:
            self.rss.setdefault(name, []).append(rss)


def run(args: argparse.Namespace, redis_url: str, db_url: str) -> Results:
    results = Results()
    py = sys.executable
    with redis_namespace(redis_url, "coldstart") as namespace, pg_schema(db_url, "cold") as schema:
        log(f"loading {args.rules:,} rules into {schema}")
        load_rules(db_url, schema, args.rules)
        r = redis.Redis.from_url(redis_url)
        bump_version(r, namespace)
        keys = Keys(namespace)
        env = child_env(
            redis_url=redis_url,
            database_url=db_url,
            database_schema=schema,
            namespace=namespace,
            data_dir=f"/tmp/{namespace}",
            WORKERS="1",
            THREADS="8",
        )
        message = matching_message(args.rules)
        seq = 0
        for number in range(args.runs):
            log(f"run {number + 1}/{args.runs}")
            results.add("python -c pass", _time_cmd([py, "-c", "pass"]))
            results.add("import floor (named packages)", _time_cmd([py, "-c", IMPORT_FLOOR]))
            results.add("imports of mutt serve alert", _time_cmd([py, "-c", SERVE_IMPORTS]))
            results.add("imports of mutt worker alert", _time_cmd([py, "-c", WORKER_IMPORTS]))
            for state in (NOTHING, ANALYSES, INDEX):
                set_state(r, namespace, state)
                cache = RuleCache(lambda: connect_pg(db_url, schema), r, namespace)
                started, cpu = time.perf_counter(), time.process_time()
                cache.warm()
                results.add(
                    f"rule load in-process, {state}",
                    time.perf_counter() - started,
                    time.process_time() - cpu,
                )
            for state in (NOTHING, INDEX):
                set_state(r, namespace, state)
                seq += 1
                s = serve_first_answer(env, message, seq)
                assert s.listening is not None
                results.add("serve alert: start → listening", s.listening)
                after = s.answered - s.listening
                results.add(f"serve alert: listening → first answer, {state}", after)
                name = f"serve alert: start → first answer, {state}"
                results.add(name, s.answered, s.cpu, s.rss_kib)
            for state in (NOTHING, INDEX):
                set_state(r, namespace, state)
                seq += 1
                streams.publish(r, keys.events, [{FIELD: encode(accepted_event(seq, message))}])
                w = first_event(
                    env,
                    mutt_argv("worker", "alert"),
                    lambda: streams.drained(r, keys.events, "alert"),
                )
                name = f"worker alert: start → first event, {state}"
                results.add(name, w.answered, w.cpu, w.rss_kib)

            before = r.xlen(keys.delivered) if r.exists(keys.delivered) else 0
            streams.publish(r, keys.alerts, [{FIELD: encode(alert_event(10_000 + number))}])

            def delivered(before: int = before) -> bool:
                return (r.xlen(keys.delivered) if r.exists(keys.delivered) else 0) > before

            f = first_event(env, mutt_argv("worker", "forward"), delivered)
            results.add("worker forward: start → first delivery", f.answered, f.cpu, f.rss_kib)
            results.add(*_ingest(env, number))
        r.close()
    return results


def _ingest(env: dict[str, str], number: int) -> tuple[str, float, float, int]:
    port = free_port()
    body = orjson.dumps({"hostname": "h", "message": f"cold {number}"})
    headers = {
        "ce-specversion": "1.0",
        "ce-id": f"cold-{number}-{time.time_ns()}",
        "ce-source": "/bench",
        "ce-type": "io.mutt.syslog.v1",
        "content-type": "application/json",
    }

    def accepted() -> bool:
        try:
            url = f"http://127.0.0.1:{port}/"
            return requests.post(url, data=body, headers=headers, timeout=5).status_code == 202
        except requests.RequestException:
            return False

    s = first_event(env, mutt_argv("serve", "ingest", "--port", str(port)), accepted)
    return "serve ingest: start → first 202", s.answered, s.cpu, s.rss_kib


def report(args: argparse.Namespace, results: Results, idle: float) -> None:
    floor = statistics.median(results.seconds["import floor (named packages)"])
    rows = []
    for name, values in results.seconds.items():
        med = statistics.median(values)
        cpu = results.cpu.get(name)
        rows.append(
            [
                name,
                f"{med:.3f}",
                f"{min(values):.3f}",
                f"{statistics.median(cpu):.3f}" if cpu else "-",
                f"{med / floor:.2f}x",
            ]
        )
    print_table(
        f"Cold start, {args.rules:,} rules in PostgreSQL (median of {args.runs};"
        f" {machine()}; CPUs {idle:.0%} idle at the start)",
        ["measure", "median s", "min s", "CPU s", "vs import floor"],
        rows,
    )
    print_table(
        "Resident memory after the first answer (MiB, median)",
        ["process", "RSS MiB"],
        [[n, f"{statistics.median(v) / 1024:.1f}"] for n, v in results.rss.items()],
    )
    print_table(
        "Imports of mutt serve alert by package (python -X importtime, one run, own time)",
        ["package", "ms", "modules"],
        [[name, f"{ms:.1f}", str(n)] for name, ms, n in import_time_by_package(SERVE_IMPORTS)],
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rules", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="1,000 rules, one run")
    args = parser.parse_args(argv)
    if args.quick:
        args.rules, args.runs = 1_000, 1
    redis_url, db_url = server_urls()
    idle = cpu_idle()
    results = run(args, redis_url, db_url)
    report(args, results, idle)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
