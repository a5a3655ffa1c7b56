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
# With it, its SHA-256 computed by the server on the bytes it sends: the name of
# the compiled index of exactly these rules (functions/alert/index_cache.py);
# about 5 ms of server time for the 2.4 MB of 10,000 rules.
_RULES_DIGEST_AND_JSON = (
    "SELECT encode(sha256(convert_to(d, 'UTF8')), 'hex'), d FROM"
    " (SELECT coalesce(json_agg(r ORDER BY r.priority, r.id), '[]')::text FROM"
    " (SELECT id, match_type, match_string, trap_oid, syslog_severity, priority,"
    " prod_handling, dev_handling, team_assignment, is_active FROM alert_rules) r) AS x(d)"
)


def load_rules(conn: pg8000.native.Connection) -> list[dict[str, Any]]:
    """Every rule, inactive ones included (``mutt rules test`` explains them too)."""
    return parse_rules(load_rules_document(conn)[1])


def load_rules_document(conn: pg8000.native.Connection) -> tuple[str, str]:
    """(SHA-256 of the rules document, the document): ``parse_rules`` reads it."""
    digest, document = conn.run(_RULES_DIGEST_AND_JSON)[0]
    return str(digest), str(document)


def parse_rules(document: str) -> list[dict[str, Any]]:
    rows = orjson.loads(document)
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise ValueError("alert_rules did not come back as a list of rows")
    return rows


def load_dev_hosts(conn: pg8000.native.Connection) -> list[str]:
    return [str(r[0]) for r in conn.run("SELECT hostname FROM development_hosts")]


def load_teams(conn: pg8000.native.Connection) -> dict[str, str]:
    """Device hostname (lower-case) → team."""
    rows = conn.run("SELECT hostname, team_assignment FROM device_teams")
    return {str(h).lower(): str(t) for h, t in rows}
