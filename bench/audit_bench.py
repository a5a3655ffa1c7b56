"""Audit rows/s through ``write_rows`` (COPY + INSERT ... ON CONFLICT) vs one INSERT per row.

Run: ``python -m bench.audit_bench [--rows 20000] [--batch 1000] [--row-seconds 8]
[--writers 2] [--quick]``.

Same table (``event_audit_log`` in a private, migrated schema), same rows,
same run. The baseline is what the audit trail would cost without COPY: one
``INSERT ... ON CONFLICT DO NOTHING`` per row, each committed on its own
(autocommit, one fsync per row). Also shown: the same per-row INSERTs with
one transaction per batch (round trips without the fsyncs), ``write_rows``
replaying rows already written (every row a conflict: the cost of a
redelivered batch), a COPY of bytes encoded beforehand (what PostgreSQL and
pg8000 cost on their own: the floor of one connection), ``write_rows`` from
``--writers`` connections at once (as that many audit replicas would), and
``encode_copy`` alone (the Python side of COPY). When PostgreSQL runs on this
machine, the CPU its backend process used is read from /proc and shown per
row: that is the server's share, which no client change can remove.
Per-row variants stop after ``--row-seconds`` and report the rate so far.
The table is truncated between variants and its row count checked after each.
"""

from __future__ import annotations

import argparse
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import orjson
import pg8000.native

from bench.common import (
    log,
    machine,
    num,
    pg_schema,
    print_table,
    process_cpu_seconds,
    ratio,
    server_urls,
)
from bench.data import accepted_events
from functions.audit.encode import copy_chunks, encode_copy
from functions.audit.writer import COLUMNS, AuditRow, write_rows
from shared.db.connection import connect_pg, parse_database_url
from shared.models import Severity

_INSERT_ONE = """
INSERT INTO event_audit_log (event_id, event_time, received_at, hostname, matched_rule_id,
    handling_decision, environment, team, severity, forwarded, alert_id, event)
VALUES (:event_id, :event_time, :received_at, :hostname, :rule, :handling, :environment,
    :team, :severity, :forwarded, :alert_id, CAST(:event AS jsonb))
ON CONFLICT (event_id, event_time) DO NOTHING
"""


@dataclass
class Result:
    name: str
    rows: int
    seconds: float
    written: int  # rows the table holds afterwards (or rows inserted, for the replay)
    io: bool = True
    server_cpu: float | None = None  # CPU seconds of the PostgreSQL backend(s), when local

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def make_rows(count: int, seed: int) -> list[AuditRow]:
    """Realistic rows: the event column is a full accepted event (~600 bytes of JSON)."""
    events = accepted_events(
        "/bench/audit",
        count,
        seed,
        source_type="bench",
        attributes={"facility": "local7", "tag": "bench"},
    )
    rows = []
    for i, event in enumerate(events):
        rows.append(
            AuditRow(
                event_id=event.event_id,
                event_time=event.time,
                received_at=event.received_at,
                hostname=event.hostname,
                matched_rule_id=1 + i % 1000,
                handling_decision="Page_and_ticket",
                environment="prod",
                team="NetOps",
                severity=int(Severity.ERROR),
                forwarded=True,
                alert_id=uuid.uuid5(event.event_id, "rule:1"),
                event=event.model_dump(mode="json"),
            )
        )
    return rows


def count_rows(conn: pg8000.native.Connection) -> int:
    return int(conn.run("SELECT count(*) FROM event_audit_log")[0][0])


def batches(rows: Sequence[AuditRow], size: int) -> list[Sequence[AuditRow]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]


class Backend:
    """CPU time of a connection's server process, read from /proc when PostgreSQL is local."""

    def __init__(self, conn: pg8000.native.Connection, database_url: str) -> None:
        target = parse_database_url(database_url)
        local = target.unix_sock is not None or target.host in ("localhost", "127.0.0.1", "::1")
        self.pid = int(conn.run("SELECT pg_backend_pid()")[0][0]) if local else None

    def cpu(self) -> float | None:
        return None if self.pid is None else process_cpu_seconds(self.pid)


def _spent(before: Sequence[float | None], backends: Sequence[Backend]) -> float | None:
    total = 0.0
    for start, backend in zip(before, backends, strict=True):
        end = backend.cpu()
        if start is None or end is None:
            return None
        total += end - start
    return total


def bench_write_rows(
    conn: pg8000.native.Connection,
    rows: Sequence[AuditRow],
    size: int,
    name: str,
    backend: Backend,
) -> Result:
    inserted = 0
    cpu = backend.cpu()
    started = time.perf_counter()
    for chunk in batches(rows, size):
        inserted += write_rows(conn, chunk)
    seconds = time.perf_counter() - started
    return Result(name, len(rows), seconds, inserted, server_cpu=_spent([cpu], [backend]))


def bench_copy_only(
    conn: pg8000.native.Connection, rows: Sequence[AuditRow], size: int, backend: Backend
) -> Result:
    """COPY of bytes encoded beforehand: what PostgreSQL and pg8000 cost without the encoding.

    Sent in the same chunks ``write_rows`` sends, so only the encoding differs.
    """
    encoded = [list(copy_chunks(chunk, [])) for chunk in batches(rows, size)]
    sql = f"COPY event_audit_log ({', '.join(COLUMNS)}) FROM STDIN"
    cpu = backend.cpu()
    started = time.perf_counter()
    for stream in encoded:
        conn.run(sql, stream=stream)
    seconds = time.perf_counter() - started
    return Result(
        "COPY of pre-encoded bytes (server floor)",
        len(rows),
        seconds,
        count_rows(conn),
        server_cpu=_spent([cpu], [backend]),
    )


def bench_parallel(
    database_url: str, schema: str, rows: Sequence[AuditRow], size: int, writers: int
) -> Result:
    """``write_rows`` from ``writers`` connections at once, as that many audit replicas would."""
    conns = [connect_pg(database_url, schema) for _ in range(writers)]
    try:
        backends = [Backend(c, database_url) for c in conns]
        parts = [batches(rows, size)[i::writers] for i in range(writers)]
        inserted = [0] * writers

        def work(i: int) -> None:
            for chunk in parts[i]:
                inserted[i] += write_rows(conns[i], chunk)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(writers)]
        cpu = [b.cpu() for b in backends]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - started
        return Result(
            f"write_rows, {writers} connections at once",
            len(rows),
            seconds,
            count_rows(conns[0]),
            server_cpu=_spent(cpu, backends),
        )
    finally:
        for c in conns:
            c.close()


def insert_one(conn: pg8000.native.Connection, row: AuditRow) -> None:
    conn.run(
        _INSERT_ONE,
        event_id=row.event_id,
        event_time=row.event_time,
        received_at=row.received_at,
        hostname=row.hostname,
        rule=row.matched_rule_id,
        handling=row.handling_decision,
        environment=row.environment,
        team=row.team,
        severity=row.severity,
        forwarded=row.forwarded,
        alert_id=row.alert_id,
        event=orjson.dumps(row.event).decode(),
    )


def bench_per_row(
    conn: pg8000.native.Connection,
    rows: Sequence[AuditRow],
    size: int,
    seconds: float,
    *,
    transaction: bool,
) -> Result:
    """One INSERT per row: autocommit, or one transaction per ``size`` rows."""
    done = 0
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    for chunk in batches(rows, size):
        if transaction:
            conn.run("BEGIN")
        for row in chunk:
            insert_one(conn, row)
            done += 1
            if not transaction and done % 64 == 0 and time.perf_counter() > deadline:
                break
        if transaction:
            conn.run("COMMIT")
        if time.perf_counter() > deadline:
            break
    elapsed = time.perf_counter() - started
    name = f"INSERT per row, 1 txn per {size}" if transaction else "INSERT per row, autocommit"
    return Result(name, done, elapsed, count_rows(conn))


def timed(name: str, fn: Callable[[], object], rows: int) -> Result:
    started = time.perf_counter()
    fn()
    return Result(name, rows, time.perf_counter() - started, 0, io=False)


def run(args: argparse.Namespace) -> list[Result]:
    _, database_url = server_urls()
    log(f"generating {args.rows:,} audit rows ...")
    rows = make_rows(args.rows, args.seed)
    results: list[Result] = []
    with pg_schema(database_url, "audit") as schema:
        conn = connect_pg(database_url, schema)
        try:
            # warm the connection, the stage table and the partitions (not timed)
            write_rows(conn, make_rows(50, args.seed + 1))
            conn.run("TRUNCATE event_audit_log")

            backend = Backend(conn, database_url)
            log("write_rows: one COPY per batch ...")
            name = f"write_rows (COPY), {args.batch}/batch"
            res = bench_write_rows(conn, rows, args.batch, name, backend)
            res.written = count_rows(conn)
            results.append(res)
            log(f"  {res.rate:,.0f} rows/s, table holds {res.written:,}")

            log("write_rows again on the same rows (all conflicts) ...")
            name = "write_rows replay (all duplicates)"
            replay = bench_write_rows(conn, rows, args.batch, name, backend)
            results.append(replay)
            log(f"  {replay.rate:,.0f} rows/s, inserted {replay.written:,}")

            conn.run("TRUNCATE event_audit_log")
            log("COPY of bytes encoded beforehand ...")
            floor = bench_copy_only(conn, rows, args.batch, backend)
            results.append(floor)
            log(f"  {floor.rate:,.0f} rows/s")

            conn.run("TRUNCATE event_audit_log")
            log(f"write_rows from {args.writers} connections at once ...")
            par = bench_parallel(database_url, schema, rows, args.batch, args.writers)
            results.append(par)
            log(f"  {par.rate:,.0f} rows/s, table holds {par.written:,}")

            conn.run("TRUNCATE event_audit_log")
            log(f"INSERT per row, autocommit (cap {args.row_seconds:g} s) ...")
            base = bench_per_row(conn, rows, args.batch, args.row_seconds, transaction=False)
            results.append(base)
            log(f"  {base.rate:,.0f} rows/s over {base.rows:,} rows")

            conn.run("TRUNCATE event_audit_log")
            log(f"INSERT per row, one transaction per batch (cap {args.row_seconds:g} s) ...")
            txn = bench_per_row(conn, rows, args.batch, args.row_seconds, transaction=True)
            results.append(txn)
            log(f"  {txn.rate:,.0f} rows/s over {txn.rows:,} rows")
            conn.run("TRUNCATE event_audit_log")
        finally:
            conn.close()
    log("encode_copy alone (no I/O) ...")
    results.append(
        timed(
            "encode_copy only (Python, no I/O)",
            lambda: [encode_copy(chunk) for chunk in batches(rows, args.batch)],
            len(rows),
        )
    )
    return results


def report(results: Sequence[Result]) -> None:
    base = next(r for r in results if r.name == "INSERT per row, autocommit")
    print(f"machine: {machine()}")
    print_table(
        "audit rows/s: write_rows (COPY) vs one INSERT per row (same table, same rows)",
        [
            "method",
            "rows",
            "seconds",
            "rows/s",
            "µs/row",
            "server CPU µs/row",
            "rows in table",
            "vs INSERT/row",
        ],
        [
            [
                r.name,
                f"{r.rows:,}",
                f"{r.seconds:.2f}",
                num(r.rate),
                f"{1e6 / r.rate:.1f}" if r.rate else "n/a",
                f"{1e6 * r.server_cpu / r.rows:.1f}" if r.server_cpu is not None else "-",
                f"{r.written:,}" if r.io else "-",
                ratio(r.rate, base.rate),
            ]
            for r in results
        ],
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument(
        "--row-seconds", type=float, default=8.0, help="cap of each per-row variant"
    )
    parser.add_argument(
        "--writers", type=int, default=2, help="connections of the parallel variant"
    )
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--quick", action="store_true", help="2,000 rows, 2 s caps (< 20 s)")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.row_seconds = min(args.rows, 2000), 2.0
    results = run(args)
    report(results)
    return 0 if results[0].written == args.rows and results[1].written == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
