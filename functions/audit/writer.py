"""The audit trail: one ``event_audit_log`` row per handled event, written per batch.

pg8000's ``executemany`` costs a round trip per row (docs/reference/building-blocks.md §2),
so a batch is one ``COPY`` (see ``audit_copy`` for the encoding); a batch the
primary key refuses (a redelivery) goes through a temporary table and
``INSERT ... ON CONFLICT DO NOTHING`` instead, so an event never writes a
second row.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import pg8000.native
from cloudevents.http import CloudEvent

from functions.audit.encode import CHUNK_ROWS, copy_chunks, encode_copy
from shared.db.connection import pg_error
from shared.handler import Outcome
from shared.metrics import AUDIT_ROWS

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
    "correlation",
)


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
    correlation: str | None = None  # what correlation did with the alert (NULL = delivered)


_COLS = (  # COLUMNS, spelled out: SQL is built from literal text only
    "event_id, event_time, received_at, hostname, matched_rule_id, handling_decision,"
    " environment, team, severity, forwarded, alert_id, event, correlation"
)
_CREATE_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS mutt_audit_stage"
    " (LIKE event_audit_log INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)
_COPY = "COPY mutt_audit_stage (" + _COLS + ") FROM STDIN"
_COPY_DIRECT = "COPY event_audit_log (" + _COLS + ") FROM STDIN"
_UNIQUE_VIOLATION = "23505"
_INSERT = """
INSERT INTO event_audit_log (event_id, event_time, received_at, hostname, matched_rule_id,
    handling_decision, environment, team, severity, forwarded, alert_id, event, correlation)
SELECT DISTINCT ON (event_id, event_time) event_id, event_time, received_at, hostname,
    matched_rule_id, handling_decision, environment, team, severity, forwarded, alert_id, event,
    correlation
FROM mutt_audit_stage
ON CONFLICT (event_id, event_time) DO NOTHING
"""


def write_rows(conn: pg8000.native.Connection, rows: Sequence[AuditRow]) -> int:
    """Insert the rows not already present; return how many were new.

    The common case (no row of the batch is in the table yet) is one COPY
    straight into ``event_audit_log``. When that hits the primary key (a
    redelivered batch, or a duplicate inside the batch), the transaction is
    rolled back, so nothing of it stays, and the batch goes through a staging
    table and ``INSERT ... ON CONFLICT DO NOTHING`` instead: about half the
    database work on the common path, the same idempotency on every path.
    """
    if not rows:
        return 0
    sent: list[bytes] = []
    try:  # one statement outside a transaction block is its own transaction
        conn.run(_COPY_DIRECT, stream=copy_chunks(rows, sent))
        return len(rows)
    except pg8000.native.DatabaseError as exc:
        if pg_error(exc)[0] != _UNIQUE_VIOLATION:
            raise
    if len(sent) * CHUNK_ROWS < len(rows):  # the server stopped the stream early
        sent = [encode_copy(rows)]
    conn.run("BEGIN")
    try:
        conn.run(_CREATE_STAGE)
        conn.run(_COPY, stream=sent)
        conn.run(_INSERT)
        inserted = int(conn.row_count)
        conn.run("COMMIT")
    except Exception:
        conn.run("ROLLBACK")
        raise
    return inserted


def row_from_record(data: object) -> AuditRow:
    """An audit record (the data of ``io.mutt.audit.recorded.v1``) as a row; ValueError if bad."""
    if not isinstance(data, dict):
        raise ValueError("audit record is not an object")
    try:
        rule = data["matched_rule_id"]
        severity = data["severity"]
        alert_id = data["alert_id"]
        event = data["event"]
        if not isinstance(event, dict):
            raise ValueError("event is not an object")
        return AuditRow(
            event_id=uuid.UUID(str(data["event_id"])),
            event_time=datetime.fromisoformat(str(data["event_time"])),
            received_at=datetime.fromisoformat(str(data["received_at"])),
            hostname=str(data["hostname"]),
            matched_rule_id=int(rule) if rule is not None else None,
            handling_decision=str(data["handling_decision"]),
            environment=str(data["environment"]),
            team=str(data["team"]) if data.get("team") is not None else None,
            severity=int(severity) if severity is not None else None,
            forwarded=bool(data["forwarded"]),
            alert_id=uuid.UUID(str(alert_id)) if alert_id else None,
            event=event,
            correlation=str(data["correlation"]) if data.get("correlation") else None,
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"audit record lacks or mistypes {exc}") from None


class AuditWriter:
    """The audit stage: records in, rows in PostgreSQL, one COPY per batch.

    A database outage leaves the batch pending (retried, never dropped), so
    alerting goes on from the rule cache while PostgreSQL is away and the
    trail catches up when it is back.
    """

    stage = "audit"

    def __init__(self, connect: Callable[[], pg8000.native.Connection]) -> None:
        self._connect = connect
        self._conn: pg8000.native.Connection | None = None

    def handle(self, events: Sequence[CloudEvent]) -> list[Outcome]:
        rows: list[AuditRow] = []
        outcomes: list[Outcome] = []
        for ce in events:
            try:
                rows.append(row_from_record(ce.data))
                outcomes.append(Outcome.ok())
            except ValueError as exc:
                outcomes.append(Outcome.reject(f"invalid audit record: {exc}"))
        try:
            if self._conn is None:
                self._conn = self._connect()
            written = write_rows(self._conn, rows)
        except Exception as exc:  # the database is away: keep the batch for later
            AUDIT_ROWS.labels("failed").inc(len(rows))
            self._drop()
            return [
                o if o.status == "reject" else Outcome.retry(f"audit write failed: {exc}")
                for o in outcomes
            ]
        AUDIT_ROWS.labels("written").inc(written)
        AUDIT_ROWS.labels("duplicate").inc(len(rows) - written)
        return outcomes

    def readiness(self) -> dict[str, str]:
        """Called from the health server's thread: uses its own short connection."""
        try:
            conn = self._connect()
            conn.run("SELECT 1")
            conn.close()
            return {"postgres": "ok"}
        except Exception as exc:
            return {"postgres": f"error: {type(exc).__name__}"}

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
