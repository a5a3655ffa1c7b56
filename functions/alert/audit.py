"""The audit trail: one ``event_audit_log`` row per handled event, written per batch.

pg8000's ``executemany`` costs a round trip per row (perf-limits.md §2), so a
batch goes through ``COPY`` into a temporary table and one
``INSERT ... SELECT ... ON CONFLICT DO NOTHING``: fast, and idempotent on the
event id, so a redelivered event never writes a second row.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import orjson
import pg8000.native

COLUMNS = (
    "event_id",
    "event_time",
    "received_at",
    "hostname",
    "matched_rule_id",
    "handling_decision",
    "environment",
    "team",
    "severity",
    "forwarded",
    "alert_id",
    "event",
)

_STAGE = "mutt_audit_stage"


@dataclass(frozen=True)
class AuditRow:
    """What the audit trail records about one handled event."""

    event_id: uuid.UUID
    event_time: datetime
    received_at: datetime
    hostname: str
    matched_rule_id: int | None
    handling_decision: str
    environment: str
    team: str | None
    severity: int | None
    forwarded: bool
    alert_id: uuid.UUID | None
    event: dict[str, object]


_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _field(value: object) -> str:
    """One value in COPY text format (``\\N`` is NULL)."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return orjson.dumps(_without_nul(value)).decode().translate(_ESCAPES)
    return str(value).replace("\x00", "").translate(_ESCAPES)


def _without_nul(value: object) -> object:
    """PostgreSQL text and jsonb cannot hold U+0000; drop it wherever it hides."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


def encode_copy(rows: Sequence[AuditRow]) -> bytes:
    """The rows as a COPY text stream."""
    out = io.StringIO()
    for row in rows:
        out.write("\t".join(_field(getattr(row, c)) for c in COLUMNS))
        out.write("\n")
    return out.getvalue().encode()


def write_rows(conn: pg8000.native.Connection, rows: Sequence[AuditRow]) -> int:
    """Insert the rows not already present; return how many were new."""
    if not rows:
        return 0
    cols = ", ".join(COLUMNS)
    conn.run("BEGIN")
    try:
        conn.run(
            f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} "
            "(LIKE event_audit_log INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        conn.run(f"COPY {_STAGE} ({cols}) FROM STDIN", stream=io.BytesIO(encode_copy(rows)))
        conn.run(
            f"INSERT INTO event_audit_log ({cols}) SELECT DISTINCT ON (event_id, event_time) {cols}"
            f" FROM {_STAGE} ON CONFLICT (event_id, event_time) DO NOTHING"
        )
        inserted = int(conn.row_count)
        conn.run("COMMIT")
    except Exception:
        conn.run("ROLLBACK")
        raise
    return inserted
