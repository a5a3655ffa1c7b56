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
_RULES = (
    "(SELECT id, match_type, match_string, trap_oid, syslog_severity, priority,"
    " prod_handling, dev_handling, team_assignment, is_active FROM alert_rules) r"
)
_DOCUMENT = "coalesce(json_agg(r ORDER BY r.priority, r.id), '[]')::text"
# The SHA-256 of the rules, computed by the server: the name of the compiled index of
# exactly these rules (functions/alert/index_cache.py). Over each row's text form
# (values quoted where needed, so distinct rules give distinct text), which the
# server makes in half the time of the JSON document: 10 ms at 10,000 rules.
_DIGEST = (
    "encode(sha256(convert_to(coalesce("
    "string_agg(r::text, E'\\n' ORDER BY r.priority, r.id), ''), 'UTF8')), 'hex')"
)


def load_rules(conn: pg8000.native.Connection) -> list[dict[str, Any]]:
    """Every rule, inactive ones included (``mutt rules test`` explains them too)."""
    return parse_rules(load_rules_document(conn)[1])


def rules_digest(conn: pg8000.native.Connection) -> str:
    """The SHA-256 of every rule, as ``load_rules_document`` gives it with the rules."""
    return str(conn.run(f"SELECT {_DIGEST} FROM {_RULES}")[0][0])  # noqa: S608 (constants)


def load_rules_document(conn: pg8000.native.Connection) -> tuple[str, str]:
    """(SHA-256 of the rules, the rules as one JSON document), from one snapshot."""
    query = f"SELECT {_DIGEST}, {_DOCUMENT} FROM {_RULES}"  # noqa: S608 (constants)
    digest, document = conn.run(query)[0]
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
