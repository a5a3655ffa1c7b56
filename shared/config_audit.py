"""``config_audit_log``: who changed which rule, host, team, setting or silence, and why.

Every writer (the ``mutt`` commands, the admin API and console) records its
changes through this one function, inside the transaction that makes them,
so a change the audit could not record is not made.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import pg8000.native

# ``config_audit_log``'s columns, as ``mutt audit config`` and the operator API read them.
COLUMNS = (
    "id",
    "changed_at",
    "changed_by",
    "operation",
    "table_name",
    "record_id",
    "old_values",
    "new_values",
    "reason",
    "correlation_id",
)


@dataclass(frozen=True)
class ConfigChange:
    """One row of ``config_audit_log`` before who/why/correlation are added."""

    operation: str  # CREATE, UPDATE or DELETE
    table_name: str
    record_id: str
    old_values: Mapping[str, Any] | None
    new_values: Mapping[str, Any] | None


def _jsonable(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _without_nul(value: object) -> object:
    """PostgreSQL text and jsonb cannot hold NUL: an audit row never fails for one (U+FFFD)."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if isinstance(value, Mapping):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nul(v) for v in value]
    return value


def write_config_audit(
    conn: pg8000.native.Connection,
    changes: Sequence[ConfigChange],
    *,
    changed_by: str,
    reason: str,
    correlation_id: str,
) -> None:
    """All rows in one statement (one round trip however many changes), in the caller's tx."""
    if not changes:
        return
    rows = [
        {
            "changed_by": changed_by,
            "operation": c.operation,
            "table_name": c.table_name,
            "record_id": c.record_id,
            "old_values": c.old_values,
            "new_values": c.new_values,
            "reason": reason,
            "correlation_id": correlation_id,
        }
        for c in changes
    ]
    conn.run(
        "INSERT INTO config_audit_log (changed_by, operation, table_name, record_id,"
        " old_values, new_values, reason, correlation_id)"
        " SELECT changed_by, operation, table_name, record_id, old_values, new_values,"
        " reason, correlation_id"
        " FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS x(changed_by text, operation text,"
        " table_name text, record_id text, old_values jsonb, new_values jsonb, reason text,"
        " correlation_id text)",
        rows=orjson.dumps(_without_nul(rows), default=_jsonable).decode(),
    )
