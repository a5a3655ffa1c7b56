"""The benchmarks run, print their tables and lose nothing (tiny sizes, no timing checks).

Each test runs one benchmark as a user would (``python -m bench.<name> --quick``)
against the suite's servers, then reads the printed table: the expected
columns, ``lost`` = 0 where the benchmark counts losses, and the private
Redis namespace / PostgreSQL schema it used gone afterwards.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from shared.db.connection import connect_pg

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow

Table = list[dict[str, str]]


def run_bench(servers: tuple[str, str], name: str, *args: str) -> tuple[dict[str, Table], str]:
    """Run ``python -m bench.<name>``; return its tables by title, and its stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUTT_")}
    env["MUTT_REDIS_URL"], env["MUTT_DATABASE_URL"] = servers
    return run_module(env, f"bench.{name}", *args)


def run_module(env: dict[str, str], module: str, *args: str) -> tuple[dict[str, Table], str]:
    """``python -m MODULE ARGS`` from the checkout; must exit 0; (tables, stderr)."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr[-3000:]}"
    return parse_tables(done.stdout), done.stderr


def parse_tables(text: str) -> dict[str, Table]:
    """``## title``, a blank line, a header, a ``----`` rule, rows (cells 2+ spaces apart)."""
    tables: dict[str, Table] = {}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not line.startswith("## "):
            continue
        header = re.split(r"\s{2,}", lines[i + 2].strip())
        assert set(lines[i + 3]) <= {"-", " "}, lines[i + 3]
        rows = []
        for row in lines[i + 4 :]:
            if not row.strip():
                break
            cells = re.split(r"\s{2,}", row.strip())
            assert len(cells) == len(header), f"{row!r} does not fit {header}"
            rows.append(dict(zip(header, cells, strict=True)))
        tables[line[3:]] = rows
    return tables


def only_table(tables: dict[str, Table], starts: str) -> Table:
    found = [rows for title, rows in tables.items() if title.startswith(starts)]
    assert len(found) == 1, f"no single table titled {starts!r} in {list(tables)}"
    assert found[0], f"table {starts!r} is empty"
    return found[0]


def assert_cleaned_up(servers: tuple[str, str], stderr: str) -> None:
    """The namespace and schema the benchmark announced are gone."""
    namespaces = re.findall(r"Redis keys of namespace (\S+)", stderr)
    schemas = re.findall(r"dropped PostgreSQL schema (\S+)", stderr)
    assert namespaces or schemas, "the benchmark reported no namespace or schema cleaned"
    client = redis.Redis.from_url(servers[0])
    try:
        for ns in namespaces:
            assert not list(client.scan_iter(match=f"{ns}:*", count=1000)), ns
    finally:
        client.close()
    if schemas:
        conn = connect_pg(servers[1])
        try:
            for schema in schemas:
                left = conn.run("SELECT count(*) FROM pg_namespace WHERE nspname = :s", s=schema)
                assert left[0][0] == 0, schema
        finally:
            conn.close()


def columns(table: Table) -> list[str]:
    return list(table[0])


def needs_wrk() -> None:
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (apt-get install wrk)")


def test_bench_lists_every_benchmark() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--list"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    for name in (
        "ingest_bench",
        "audit_bench",
        "forward_bench",
        "e2e_bench",
        "rules_bench",
        "syslog_bench",
        "auth_flood_bench",
        "knative_bench",
    ):
        assert name in done.stdout


def test_ingest_bench_quick(servers: tuple[str, str]) -> None:
    needs_wrk()
    tables, stderr = run_bench(servers, "ingest_bench", "--quick")
    table = only_table(tables, "ingest vs no-op")
    assert columns(table) == [
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
    ]
    shapes = {"single", "legacy100", "cebatch100"}
    for server in ("noop", "ingest"):
        assert {row["request"] for row in table if row["server"] == server} == shapes
    for row in table:
        assert row["errors"] == "0", row
        assert row["vs no-op"].endswith("x"), row
    for row in table:
        if row["server"] == "ingest":
            assert row["events/s"] != "0", row
            assert row["in stream"] != "0", row  # the events are in Redis, not just answered
    assert_cleaned_up(servers, stderr)


def test_auth_flood_bench_quick(servers: tuple[str, str]) -> None:
    needs_wrk()
    tables, stderr = run_bench(servers, "auth_flood_bench", "--quick")
    table = only_table(tables, "bad-key flood vs good requests")
    assert columns(table) == [
        "load",
        "requests",
        "answers",
        "server CPU s",
        "Redis CPU s",
        "CPU us/req",
        "vs good",
        "vs good x100",
        "wrk CPU us/req",
    ]
    rows = {row["load"]: row for row in table}
    assert rows["good, 1 event/request"]["answers"].startswith("202:")
    assert rows["good, 100 events/request"]["answers"].startswith("202:")
    throttled = rows["bad key (throttled)"]["answers"].split()
    assert throttled[0] == "401:20" and throttled[1].startswith("429:"), throttled
    assert rows["bad key, no throttle"]["answers"].startswith("401:")
    proxied = rows["bad key (throttled), behind a proxy"]["answers"].split()
    assert proxied[0] == "401:20" and proxied[1].startswith("429:"), proxied
    assert rows["floor: gunicorn, empty answer"]["answers"].startswith("429:")
    assert "cleanup: deleted" in stderr


def test_audit_bench_quick(servers: tuple[str, str]) -> None:
    tables, stderr = run_bench(servers, "audit_bench", "--quick")
    table = only_table(tables, "audit rows/s")
    assert columns(table) == [
        "method",
        "rows",
        "seconds",
        "rows/s",
        "µs/row",
        "server CPU µs/row",
        "rows in table",
        "vs INSERT/row",
    ]
    copy = next(row for row in table if row["method"].startswith("write_rows (COPY)"))
    assert copy["rows in table"] == copy["rows"] == "2,000"
    assert float(copy["server CPU µs/row"]) > 0  # PostgreSQL is local here: read from /proc
    floor = next(row for row in table if row["method"].startswith("COPY of pre-encoded"))
    assert floor["rows in table"] == "2,000"
    both = next(row for row in table if row["method"].startswith("write_rows, 2 connections"))
    assert both["rows in table"] == "2,000"  # every batch written once, by one of the two
    replay = next(row for row in table if row["method"].startswith("write_rows replay"))
    assert replay["rows in table"] == "0"  # idempotent: nothing written twice
    assert any(row["method"] == "INSERT per row, autocommit" for row in table)
    assert_cleaned_up(servers, stderr)


def test_forward_bench_quick(servers: tuple[str, str]) -> None:
    tables, stderr = run_bench(servers, "forward_bench", "--quick")
    table = only_table(tables, "forward:")
    assert columns(table) == [
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
    ]
    assert {(row["sink"], row["rate limit"]) for row in table} == {
        ("file", "off"),
        ("file", "2,000/s"),
        ("webhook", "off"),
        ("webhook", "2,000/s"),
    }
    for row in table:
        assert (row["lost"], row["dup"], row["dead-lettered"]) == ("0", "0", "0"), row
        assert row["alerts"] == "1,000"
    assert_cleaned_up(servers, stderr)


def test_e2e_bench_quick(servers: tuple[str, str]) -> None:
    needs_wrk()
    tables, stderr = run_bench(servers, "e2e_bench", "--quick")
    throughput = only_table(tables, "end to end throughput")
    latency = only_table(tables, "end to end latency")
    assert {"request", "ingest only ev/s", "end to end ev/s", "vs ingest only", "lost"} <= set(
        columns(throughput)
    )
    assert {"offered ev/s", "ev/req", "p50 ms", "p95 ms", "p99 ms", "lost"} <= set(columns(latency))
    assert [row["request"] for row in throughput] == ["single", "legacy100"]
    for row in [*throughput, *latency]:
        assert row["lost"] == "0", row
        assert row["dup"] == "0", row
        assert row["delivered"] == row["alerts"] == row["audit rows"], row
        assert row["alerts"] != "0", row
    cpu = only_table(tables, "CPU per event")
    for row in cpu:
        stage, used = row["busiest (CPUs)"].split()
        assert stage in {"ingest", "alert", "forward", "audit", "redis-server"}, row
        assert 0 < float(used) <= float(row["CPUs busy"]), row
    assert_cleaned_up(servers, stderr)


def test_e2e_bench_knative_mode_quick(servers: tuple[str, str]) -> None:
    """The Knative path (relay + mutt serve) drains the same backlog as the worker path."""
    tables, stderr = run_bench(servers, "e2e_bench", "--mode", "knative", "--quick")
    drain = only_table(tables, "drain ")
    assert [row["path"] for row in drain] == ["worker", "knative x1", "knative x2"]
    assert drain[0]["vs worker"] == "1.00x"
    for row in drain:
        assert row["lost"] == "0" and row["doubled"] == "0", row
        done, expected = row["alerts"].split("/")
        assert done == expected != "0", row
    cpu = only_table(tables, "CPU per event")
    assert {row["path"] for row in cpu} == {row["path"] for row in drain}
    assert float(cpu[1]["relay"].replace(",", "")) > 0  # the relay did the Knative path's work
    assert_cleaned_up(servers, stderr)


def test_runner_on_the_embedded_default(tmp_path: Path) -> None:
    """``python -m bench --embedded``: servers started and stopped by the runner, no URL needed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUTT_")}
    env["TMPDIR"] = str(tmp_path)
    rows, stderr = run_module(env, "bench", "--embedded", "--quick", "audit_bench")
    assert "servers: unix://" in stderr
    (table,) = [t for title, t in rows.items() if title.startswith("audit")]
    assert int(table[0]["rows in table"].replace(",", "")) > 0
    assert "stopping the embedded servers" in stderr
    assert not list(tmp_path.glob("mutt-bench-*"))  # the scratch directory is gone


def test_syslog_bench_quick(servers: tuple[str, str]) -> None:
    if not Path("/usr/sbin/rsyslogd").exists():
        pytest.skip("rsyslogd is absent: run .ci/install-system-packages.sh")
    tables, stderr = run_bench(servers, "syslog_bench", "--quick")
    missing = only_table(tables, "syslog: missing per offered rate")
    assert columns(missing) == [
        "rate/s",
        "path",
        "sent",
        "offered/s",
        "missing +2s",
        "missing final",
        "catch-up s",
        "kernel drops",
        "queue drops",
        "relay input drops",
    ]
    assert {row["path"] for row in missing} == {
        "rsyslogd UDP -> omfile",
        "mutt syslog UDP",
        "rsyslogd omfwd TCP -> mutt syslog",
    }
    for row in missing:
        assert row["sent"] in {"500", "2,000"}, row
        if row["path"] == "rsyslogd omfwd TCP -> mutt syslog" and row["relay input drops"] == "0":
            assert row["missing final"] == "0.00%", row  # TCP: held back, never dropped
    cpu = only_table(tables, "CPU per message")
    assert columns(cpu) == [
        "rate/s",
        "path",
        "sender",
        "rsyslogd",
        "mutt syslog",
        "ingest",
        "redis (shared)",
    ]
    # the bench itself fails (exit != 0) on a loss mutt syslog did not count
    assert_cleaned_up(servers, stderr)


def test_coldstart_bench_quick(servers: tuple[str, str]) -> None:
    tables, stderr = run_bench(servers, "coldstart_bench", "--quick")
    table = only_table(tables, "Cold start")
    assert columns(table) == ["measure", "median s", "min s", "CPU s", "vs import floor"]
    measures = {row["measure"] for row in table}
    for state in ("nothing cached", "compiled index in Redis"):
        assert f"serve alert: listening → first answer, {state}" in measures
        assert f"serve alert: start → first answer, {state}" in measures
        assert f"worker alert: start → first event, {state}" in measures
    assert {"serve alert: start → listening", "import floor (named packages)"} <= measures
    memory = only_table(tables, "Resident memory")
    assert all(float(row["RSS MiB"]) > 0 for row in memory)
    imports = only_table(tables, "Imports of mutt serve alert")
    assert imports[-1]["package"] == "total"
    assert_cleaned_up(servers, stderr)


def test_e2e_bench_compares_partitions_on_one_redis_and_a_cluster(
    servers: tuple[str, str], redis_cluster: object
) -> None:
    """``--partitions 2 --cluster``: one row per configuration and request kind, nothing lost.

    (``redis_cluster`` only makes the test skip where the cluster cannot run.)
    """
    needs_wrk()
    tables, stderr = run_bench(servers, "e2e_bench", "--partitions", "2", "--cluster", "--quick")
    rows = only_table(tables, "end to end throughput by stream partitions")
    assert [(r["redis"], r["partitions"], r["request"]) for r in rows] == [
        (redis, "2", request)
        for redis in ("one Redis", "cluster (3 primaries)", "cluster (3 primaries), WAIT 1")
        for request in ("drain", "single", "legacy100")
    ]
    assert {r["lost"] for r in rows} == {"0"} and {r["dup"] for r in rows} == {"0"}
    assert all(len(r["each primary µs/ev"].split(" / ")) == 3 for r in rows[3:])
    assert_cleaned_up(servers, stderr)
