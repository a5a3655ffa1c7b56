"""Reading ``event_audit_log`` back: the one query ``mutt audit events`` and the API use.

The writer (``writer.COLUMNS``) and this reader name the same columns, so a
new column is added in one place.
"""

from __future__ import annotations

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
