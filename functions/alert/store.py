"""Reading the alert stage's reference data from PostgreSQL.

Rows come back as plain dicts; validation is the rule engine's job
(``RuleSet.from_rows``), so a bad row written behind MUTT's back is rejected
with a reason instead of crashing the loader.
"""

from __future__ import annotations

from typing import Any

import pg8000.native

RULE_COLUMNS = (
    "id",
    "match_type",
    "match_string",
    "trap_oid",
    "syslog_severity",
    "priority",
    "prod_handling",
    "dev_handling",
    "team_assignment",
    "is_active",
)


def load_rules(conn: pg8000.native.Connection) -> list[dict[str, Any]]:
    """Every rule, inactive ones included (``mutt rules test`` explains them too)."""
    rows = conn.run(
        "SELECT id, match_type, match_string, trap_oid, syslog_severity, priority,"
        " prod_handling, dev_handling, team_assignment, is_active"
        " FROM alert_rules ORDER BY priority, id"
    )
    return [dict(zip(RULE_COLUMNS, row, strict=True)) for row in rows]


def load_dev_hosts(conn: pg8000.native.Connection) -> list[str]:
    return [str(r[0]) for r in conn.run("SELECT hostname FROM development_hosts")]


def load_teams(conn: pg8000.native.Connection) -> dict[str, str]:
    """Device hostname (lower-case) → team."""
    rows = conn.run("SELECT hostname, team_assignment FROM device_teams")
    return {str(h).lower(): str(t) for h, t in rows}
