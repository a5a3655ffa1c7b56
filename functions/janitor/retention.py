"""Retention: old audit partitions dropped (or detached), old config audit trimmed,
streams trimmed only below what every consumer group has finished.

A partition goes when its whole month is older than the retention period,
never before; DEFAULT rows older than retention are deleted (they would
otherwise never leave). Stream trimming uses ``XTRIM MINID`` at the lowest
id still needed by any group (its oldest pending entry, or the first entry
it has not read yet), and keeps ``stream_keep_minutes`` of history, so
trimming can never remove an entry that is not yet processed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

import pg8000.native
import redis

from functions.janitor.partitions import partitions

AUDIT_GROUPS = ("alert", "forward", "audit")


@dataclass
class RetentionReport:
    dropped: list[str] = field(default_factory=list)
    detached: list[str] = field(default_factory=list)
    default_rows_deleted: int = 0
    config_rows_deleted: int = 0
    trimmed: dict[str, int] = field(default_factory=dict)


def _month_of(name: str) -> date | None:
    tail = name[-7:]
    if len(tail) == 7 and tail[4] == "_" and tail[:4].isdigit() and tail[5:].isdigit():
        return date(int(tail[:4]), int(tail[5:]), 1)
    return None


def audit(
    conn: pg8000.native.Connection,
    retention_days: int,
    mode: Literal["drop", "detach"],
    report: RetentionReport,
) -> None:
    cutoff: date = conn.run("SELECT (now() - make_interval(days => :d))::date", d=retention_days)[
        0
    ][0]
    for name in partitions(conn):
        month = _month_of(name)
        if month is None:
            continue
        end = date(month.year + (month.month == 12), month.month % 12 + 1, 1)
        if end > cutoff:
            continue  # some of its rows are still inside the retention period
        ident = conn.run("SELECT quote_ident(:n)", n=name)[0][0]
        if mode == "drop":
            conn.run(f"DROP TABLE {ident}")
            report.dropped.append(name)
        else:
            conn.run(f"ALTER TABLE event_audit_log DETACH PARTITION {ident}")
            archived = conn.run("SELECT quote_ident(:n)", n=f"archived_{name}")[0][0]
            conn.run(f"ALTER TABLE {ident} RENAME TO {archived}")
            report.detached.append(f"archived_{name}")
    conn.run("DELETE FROM event_audit_log_default WHERE event_time < :c", c=cutoff)
    report.default_rows_deleted = int(conn.row_count)


def config_audit(
    conn: pg8000.native.Connection, retention_days: int, report: RetentionReport
) -> None:
    conn.run(
        "DELETE FROM config_audit_log WHERE changed_at < now() - make_interval(days => :d)",
        d=retention_days,
    )
    report.config_rows_deleted = int(conn.row_count)


def _next_id(entry_id: str) -> str:
    ms, _, seq = entry_id.partition("-")
    return f"{ms}-{int(seq or 0) + 1}"


def safe_min_id(r: redis.Redis, stream: str) -> str | None:
    """The lowest id any group still needs; ``None`` if the stream has no groups."""
    try:
        groups: Any = r.xinfo_groups(stream)
    except redis.ResponseError:
        return None
    if not groups:
        return None
    needed: list[tuple[int, int]] = []
    for g in groups:
        name = g["name"]
        summary: Any = r.xpending(stream, name)
        if summary["pending"]:
            first = summary["min"]
            first = first.decode() if isinstance(first, bytes) else str(first)
        else:
            last = g["last-delivered-id"]
            first = _next_id(last.decode() if isinstance(last, bytes) else str(last))
        stamp, _, seq = first.partition("-")
        needed.append((int(stamp), int(seq or 0)))
    low_ms, low_seq = min(needed)
    return f"{low_ms}-{low_seq}"


def trim_streams(
    r: redis.Redis, stream_names: list[str], keep_minutes: int, now_ms: int, report: RetentionReport
) -> None:
    horizon = now_ms - keep_minutes * 60_000
    for stream in stream_names:
        needed = safe_min_id(r, stream)
        if needed is None:
            continue
        ms = int(needed.partition("-")[0])
        min_id = needed if ms <= horizon else f"{horizon}-0"
        removed = int(r.xtrim(stream, minid=min_id))  # exact: never past the needed id
        if removed:
            report.trimmed[stream] = removed
