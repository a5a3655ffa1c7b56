"""Audit-log partitions: keep monthly partitions created ahead of time."""

from __future__ import annotations

import pg8000.native


def ensure_ahead(conn: pg8000.native.Connection, months_ahead: int) -> list[str]:
    """Create this month's and the next ``months_ahead`` partitions; return their names."""
    rows = conn.run(
        "SELECT mutt_ensure_audit_partition("
        " (date_trunc('month', now()) + make_interval(months => m))::date)"
        " FROM generate_series(0, :ahead) AS m",
        ahead=months_ahead,
    )
    return [str(r[0]) for r in rows]
