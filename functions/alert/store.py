"""Reading the alert stage's reference data from PostgreSQL.

Rows come back as plain dicts; validation is the rule engine's job
(``RuleSet.from_rows``), so a bad row written behind MUTT's back is rejected
with a reason instead of crashing the loader.
"""

from __future__ import annotations

from typing import Any

import orjson
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


# One JSON document instead of one row per rule: pg8000 decodes rows column by
# column in Python (about 25 µs per rule), orjson reads the document in C. Every
# column is an integer, text, boolean or NULL, so JSON gives the same Python values.
_RULES_JSON = (
    "SELECT coalesce(json_agg(r ORDER BY r.priority, r.id), '[]')::text FROM"
    " (SELECT id, match_type, match_string, trap_oid, syslog_severity, priority,"
    " prod_handling, dev_handling, team_assignment, is_active FROM alert_rules) r"
)


def load_rules(conn: pg8000.native.Connection) -> list[dict[str, Any]]:
    """Every rule, inactive ones included (``mutt rules test`` explains them too)."""
    rows = orjson.loads(conn.run(_RULES_JSON)[0][0])
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise ValueError("alert_rules did not come back as a list of rows")
    return rows


def load_dev_hosts(conn: pg8000.native.Connection) -> list[str]:
    return [str(r[0]) for r in conn.run("SELECT hostname FROM development_hosts")]


def load_teams(conn: pg8000.native.Connection) -> dict[str, str]:
    """Device hostname (lower-case) → team."""
    rows = conn.run("SELECT hostname, team_assignment FROM device_teams")
    return {str(h).lower(): str(t) for h, t in rows}
