"""Reading ``event_audit_log`` back: the one query ``mutt audit events`` and the API use.

The writer (``writer.COLUMNS``) and this reader name the same columns, so a
new column is added in one place.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pg8000.native

from functions.audit.writer import COLUMNS


def query_events(
    conn: pg8000.native.Connection,
    *,
    since: datetime,
    until: datetime | None = None,
    host: str | None = None,
    rule: int | None = None,
    team: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Audit rows, newest first; every value is a bound parameter."""
    where = ["event_time >= :since"]
    params: dict[str, Any] = {"since": since, "limit": limit}
    if until is not None:
        where.append("event_time < :until")
        params["until"] = until
    if host is not None:
        where.append("hostname = :host")
        params["host"] = host.strip().lower()
    if rule is not None:
        where.append("matched_rule_id = :rule")
        params["rule"] = rule
    if team is not None:
        where.append("team = :team")
        params["team"] = team
    sql = (
        f"SELECT {', '.join(COLUMNS)} FROM event_audit_log"  # noqa: S608 - fixed clauses
        f" WHERE {' AND '.join(where)} ORDER BY event_time DESC, event_id LIMIT :limit"
    )
    return [dict(zip(COLUMNS, row, strict=True)) for row in conn.run(sql, **params)]


PAGE = 5_000
_SELECT = (
    "SELECT event_time, event_id, event, matched_rule_id, handling_decision, team"
    " FROM event_audit_log WHERE event_time >= :since AND event_time < :until"
)
_ORDER = " ORDER BY event_time, event_id LIMIT :n"
_FIRST = _SELECT + _ORDER
_NEXT = (
    _SELECT + " AND (event_time, event_id) > (CAST(:t AS timestamptz), CAST(:id AS uuid))" + _ORDER
)


def audited_events(
    conn: pg8000.native.Connection, since: datetime, until: datetime, limit: int
) -> Iterator[tuple[Any, int | None, str, str | None]]:
    """(event JSON, matched rule, handling, team) of audited events, oldest first, in pages."""
    after: tuple[datetime, str] | None = None
    served = 0
    while served < limit:
        page = min(PAGE, limit - served)
        if after is None:
            rows = conn.run(_FIRST, since=since, until=until, n=page)
        else:
            rows = conn.run(_NEXT, since=since, until=until, n=page, t=after[0], id=after[1])
        for row in rows:
            yield row[2], row[3], row[4], row[5]
        served += len(rows)
        if len(rows) < page:
            return
        after = (rows[-1][0], str(rows[-1][1]))
