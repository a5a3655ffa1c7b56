"""Audit-log partitions: created months ahead, strays in DEFAULT moved home.

Rows land in the DEFAULT partition when their month has no partition (old
replays, clock skew, a janitor that did not run). A month's partition cannot
be created while DEFAULT still holds rows of that month, so the move is one
transaction: take the month's rows out of DEFAULT, create the partition,
put them back (now routed into it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

import pg8000.native

_MONTH = re.compile(r"_(\d{4})_(\d{2})$")


@dataclass
class PartitionReport:
    """What a partitions run did (``created``, ``moved_*``) and the health it left.

    The health fields are what ``health()`` reads, also on its own (``mutt status``):
    ``partitions`` monthly partitions exist, the newest is ``newest``, which is
    ``months_ahead`` months after the current one (``None``: no monthly partition
    at all), and ``default_rows`` rows sit in DEFAULT (``default_rows_capped``: at
    least that many, the count stopped there).
    """

    created: list[str] = field(default_factory=list)
    moved_rows: int = 0
    moved_months: list[str] = field(default_factory=list)
    default_rows: int = 0
    newest: str | None = None
    months_ahead: int | None = None
    partitions: int = 0
    default_rows_capped: bool = False


def partitions(conn: pg8000.native.Connection) -> list[str]:
    rows = conn.run(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'event_audit_log'::regclass ORDER BY c.relname"
    )
    return [str(r[0]) for r in rows]


def ensure_ahead(conn: pg8000.native.Connection, months_ahead: int) -> list[str]:
    """Create this month's and the next ``months_ahead`` partitions; return the new ones."""
    before = set(partitions(conn))
    conn.run(
        "SELECT mutt_ensure_audit_partition("
        " (date_trunc('month', now()) + make_interval(months => m))::date)"
        " FROM generate_series(0, :ahead) AS m",
        ahead=months_ahead,
    )
    return sorted(set(partitions(conn)) - before)


def move_default_rows(conn: pg8000.native.Connection, not_before: date) -> tuple[list[str], int]:
    """Give every month found in DEFAULT (from ``not_before`` on) its partition."""
    months = conn.run(
        "SELECT DISTINCT date_trunc('month', event_time)::date FROM event_audit_log_default"
        " WHERE event_time >= :since ORDER BY 1",
        since=not_before,
    )
    moved = 0
    names = []
    for (month,) in months:
        conn.run("BEGIN")
        try:
            conn.run(
                "CREATE TEMP TABLE mutt_moving ON COMMIT DROP AS"
                " SELECT * FROM event_audit_log_default WHERE false"
            )
            conn.run(
                "WITH gone AS (DELETE FROM event_audit_log_default"
                " WHERE event_time >= :m AND event_time < (:m + INTERVAL '1 month') RETURNING *)"
                " INSERT INTO mutt_moving SELECT * FROM gone",
                m=month,
            )
            count = int(conn.row_count)
            name = conn.run("SELECT mutt_ensure_audit_partition(:m)", m=month)[0][0]
            conn.run("INSERT INTO event_audit_log SELECT * FROM mutt_moving")
            conn.run("COMMIT")
        except Exception:
            conn.run("ROLLBACK")
            raise
        moved += count
        names.append(str(name))
    return names, moved


def health(
    conn: pg8000.native.Connection,
    report: PartitionReport | None = None,
    default_rows_cap: int | None = None,
) -> PartitionReport:
    """How far ahead monthly partitions exist and how much sits in DEFAULT (read-only).

    Fills in ``report`` (a new one when ``None``) and returns it. Months count on
    PostgreSQL's clock, as the partitions are created. ``default_rows_cap`` stops
    counting DEFAULT's rows after that many (a huge DEFAULT is slow to count).
    """
    report = PartitionReport() if report is None else report
    if default_rows_cap is None:
        rows = conn.run("SELECT count(*) FROM event_audit_log_default")
    else:
        rows = conn.run(
            "SELECT count(*) FROM (SELECT 1 FROM event_audit_log_default LIMIT :cap) AS s",
            cap=default_rows_cap + 1,
        )
    report.default_rows = int(rows[0][0])
    report.default_rows_capped = (
        default_rows_cap is not None and report.default_rows > default_rows_cap
    )
    months = [(int(m[1]), int(m[2]), p) for p in partitions(conn) if (m := _MONTH.search(p))]
    report.partitions = len(months)
    report.newest, report.months_ahead = None, None
    if months:
        year, month, report.newest = max(months)
        today: date = conn.run("SELECT current_date")[0][0]
        report.months_ahead = (year - today.year) * 12 + (month - today.month)
    return report


def run(conn: pg8000.native.Connection, months_ahead: int, retention_days: int) -> PartitionReport:
    report = PartitionReport()
    report.created = ensure_ahead(conn, months_ahead)
    cutoff = conn.run("SELECT (now() - make_interval(days => :d))::date", d=retention_days)[0][0]
    report.moved_months, report.moved_rows = move_default_rows(conn, cutoff)
    return health(conn, report)
