"""Reads for the API and the console: the audit trails, paged, and event rates.

Every value is a bound parameter; column lists are fixed here. Pages come
two ways: ``page``/``limit`` with a total (as ``/api/v1`` always answered)
and an opaque cursor (``/api/v2``: stable while rows are added).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pg8000.native

from functions.admin.errors import bad
from functions.audit.writer import COLUMNS as EVENT_COLUMNS
from shared.config_audit import COLUMNS as CONFIG_COLUMNS

OPERATIONS = ("CREATE", "UPDATE", "DELETE")


def parse_time(name: str, text: str | None) -> datetime | None:
    """An ISO date or time (UTC when it has no zone); 400 naming ``name`` otherwise."""
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        raise bad(
            name, f"{text[:40]!r} is not an ISO date or time (2025-06-01T12:00:00Z)"
        ) from None
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    if not datetime(1970, 1, 1, tzinfo=UTC) <= when <= datetime(9999, 1, 1, tzinfo=UTC):
        raise bad(name, "is out of range")
    return when


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


def decode_cursor(text: str | None, types: tuple[type, ...]) -> list[Any] | None:
    if text is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        values = orjson.loads(raw)
    except (ValueError, orjson.JSONDecodeError):
        raise bad("cursor", "is not a cursor this API gave out") from None
    if (
        not isinstance(values, list)
        or len(values) != len(types)
        or not all(
            isinstance(v, t) and not isinstance(v, bool) for v, t in zip(values, types, strict=True)
        )
    ):
        raise bad("cursor", "is not a cursor this API gave out")
    return values


@dataclass
class Filters:
    """A WHERE clause built from validated filters, every value bound."""

    where: list[str] = field(default_factory=lambda: ["TRUE"])
    params: dict[str, Any] = field(default_factory=dict)

    def add(self, clause: str, name: str, value: object) -> None:
        if value is not None:
            self.where.append(clause)
            self.params[name] = value

    @property
    def sql(self) -> str:
        return " AND ".join(self.where)


def config_filters(
    *,
    changed_by: str | None = None,
    operation: str | None = None,
    table_name: str | None = None,
    record_id: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Filters:
    if operation is not None and operation.upper() not in OPERATIONS:
        raise bad("operation", f"must be one of {', '.join(OPERATIONS)}")
    f = Filters()
    f.add("changed_by = :by", "by", changed_by)
    f.add("operation = :op", "op", operation.upper() if operation else None)
    f.add("table_name = :tbl", "tbl", table_name)
    f.add("record_id = :rec", "rec", record_id)
    f.add("changed_at >= :start", "start", start)
    f.add("changed_at <= :end", "end", end)
    return f


def event_filters(
    *,
    hostname: str | None = None,
    rule_id: int | None = None,
    team: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Filters:
    f = Filters()
    f.add("hostname = :host", "host", hostname.lower() if hostname else None)
    f.add("matched_rule_id = :rule", "rule", rule_id)
    f.add("team = :team", "team", team)
    f.add("event_time >= :start", "start", start)
    f.add("event_time <= :end", "end", end)
    return f


def _rows(columns: tuple[str, ...], rows: list[list[Any]]) -> list[dict[str, Any]]:
    return [dict(zip(columns, row, strict=True)) for row in rows]


def config_page(
    conn: pg8000.native.Connection, f: Filters, *, page: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """One page of config changes, newest first, and the total."""
    total = int(conn.run(f"SELECT count(*) FROM config_audit_log WHERE {f.sql}", **f.params)[0][0])  # noqa: S608 - fixed clauses
    rows = conn.run(
        f"SELECT {', '.join(CONFIG_COLUMNS)} FROM config_audit_log WHERE {f.sql}"  # noqa: S608 - fixed clauses
        " ORDER BY id DESC LIMIT :limit OFFSET :offset",
        **f.params,
        limit=limit,
        offset=(page - 1) * limit,
    )
    return _rows(CONFIG_COLUMNS, rows), total


def config_after(
    conn: pg8000.native.Connection, f: Filters, *, cursor: list[Any] | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """Config changes after the cursor, newest first, and the next cursor."""
    if cursor is not None:
        f.add("id < :after", "after", cursor[0])
    rows = conn.run(
        f"SELECT {', '.join(CONFIG_COLUMNS)} FROM config_audit_log WHERE {f.sql}"  # noqa: S608 - fixed clauses
        " ORDER BY id DESC LIMIT :limit",
        **f.params,
        limit=limit + 1,
    )
    items = _rows(CONFIG_COLUMNS, rows[:limit])
    more = len(rows) > limit
    return items, encode_cursor([items[-1]["id"]]) if more and items else None


def events_page(
    conn: pg8000.native.Connection, f: Filters, *, page: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    total = int(conn.run(f"SELECT count(*) FROM event_audit_log WHERE {f.sql}", **f.params)[0][0])  # noqa: S608 - fixed clauses
    rows = conn.run(
        f"SELECT {', '.join(EVENT_COLUMNS)} FROM event_audit_log WHERE {f.sql}"  # noqa: S608 - fixed clauses
        " ORDER BY event_time DESC, event_id LIMIT :limit OFFSET :offset",
        **f.params,
        limit=limit,
        offset=(page - 1) * limit,
    )
    return _rows(EVENT_COLUMNS, rows), total


def events_after(
    conn: pg8000.native.Connection, f: Filters, *, cursor: list[Any] | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    if cursor is not None:
        when = parse_time("cursor", cursor[0])
        f.where.append("(event_time, event_id::text) < (:ct, :cid)")
        f.params.update(ct=when, cid=cursor[1])
    rows = conn.run(
        f"SELECT {', '.join(EVENT_COLUMNS)} FROM event_audit_log WHERE {f.sql}"  # noqa: S608 - fixed clauses
        " ORDER BY event_time DESC, event_id::text DESC LIMIT :limit",
        **f.params,
        limit=limit + 1,
    )
    items = _rows(EVENT_COLUMNS, rows[:limit])
    if len(rows) > limit and items:
        last = items[-1]
        return items, encode_cursor([last["event_time"].isoformat(), str(last["event_id"])])
    return items, None


def pagination(page: int, limit: int, total: int) -> dict[str, int]:
    return {"page": page, "limit": limit, "total": total, "pages": (total + limit - 1) // limit}


# ---------------------------------------------------------------- event rates


def event_rates(conn: pg8000.native.Connection, now: datetime | None = None) -> dict[str, Any]:
    """Audited events per minute over 1 min, 15 min and 1 h, and per hour over 24 h.

    ``event_audit_log`` holds one row per handled event (and per unmatched
    one when ``audit_unhandled`` is 1), by the event's own time.
    """
    now = now or datetime.now(UTC)
    start = (now - timedelta(hours=23)).replace(minute=0, second=0, microsecond=0)
    counts = conn.run(
        "SELECT count(*) FILTER (WHERE event_time > :m1),"
        " count(*) FILTER (WHERE event_time > :m15), count(*) FROM event_audit_log"
        " WHERE event_time > :h1 AND event_time <= :now",
        m1=now - timedelta(minutes=1),
        m15=now - timedelta(minutes=15),
        h1=now - timedelta(hours=1),
        now=now,
    )[0]
    hourly = {
        row[0].astimezone(UTC).replace(tzinfo=UTC): int(row[1])
        for row in conn.run(
            "SELECT date_trunc('hour', event_time AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', count(*)"
            " FROM event_audit_log WHERE event_time >= :start AND event_time <= :now GROUP BY 1",
            start=start,
            now=now,
        )
    }
    hours = [start + timedelta(hours=i) for i in range(24)]
    return {
        "summary": {
            "current_rate_1m": round(float(counts[0]), 2),
            "avg_rate_15m": round(counts[1] / 15.0, 2),
            "avg_rate_1h": round(counts[2] / 60.0, 2),
        },
        "chart_24h": {
            "labels": [h.strftime("%H:00") for h in hours],
            "data": [round(hourly.get(h, 0) / 60.0, 2) for h in hours],
        },
    }
