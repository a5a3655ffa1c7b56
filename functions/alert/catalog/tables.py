"""The rule catalog's SQL: the only place that knows the columns of its tables.

The alert function owns ``alert_rules``, ``development_hosts`` and
``device_teams``. Its rule cache (``functions.alert.store``), ``mutt rules``
and the admin API all read and write them through this module, so a column
is added in one place. After a committed change the writer bumps the rules
version (``bump_version``) and every alert instance reloads within a second.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import pg8000.native
import redis

from shared.broker.keys import Keys

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
# What a rules file and an audit row carry for a rule: the columns but the id.
VALUE_KEYS = (*RULE_COLUMNS[1:], "description")

TABLE_RULES = "alert_rules"
TABLE_HOSTS = "development_hosts"
TABLE_TEAMS = "device_teams"

_SELECT_RULES = f"SELECT id, {', '.join(VALUE_KEYS)} FROM alert_rules"  # noqa: S608 - fixed
_RECORDSET = (
    "jsonb_to_recordset(CAST(:rows AS jsonb)) AS x(id int, match_type text,"
    " match_string text, trap_oid text, syslog_severity smallint, priority int,"
    " prod_handling text, dev_handling text, team_assignment text, is_active boolean,"
    " description text)"
)
# One JSON document instead of one row per rule: pg8000 decodes rows column by
# column in Python (about 25 µs per rule), orjson reads the document in C. Every
# column is an integer, text, boolean or NULL, so JSON gives the same Python values.
_RULES_COLUMNS_SQL = ", ".join(RULE_COLUMNS)
_RULES = "(SELECT " + _RULES_COLUMNS_SQL + " FROM alert_rules) r"  # noqa: S608 - fixed columns
_DOCUMENT = "coalesce(json_agg(r ORDER BY r.priority, r.id), '[]')::text"
# The SHA-256 of the rules, computed by the server: the name of the compiled index of
# exactly these rules (functions/alert/index_cache.py). Over each row's text form
# (values quoted where needed, so distinct rules give distinct text), which the
# server makes in half the time of the JSON document: 10 ms at 10,000 rules.
_DIGEST = (
    "encode(sha256(convert_to(coalesce("
    "string_agg(r::text, E'\\n' ORDER BY r.priority, r.id), ''), 'UTF8')), 'hex')"
)
_SELECT_DIGEST = "SELECT " + _DIGEST + " FROM " + _RULES  # noqa: S608 - constants
_SELECT_DOCUMENT = "SELECT " + _DIGEST + ", " + _DOCUMENT + " FROM " + _RULES  # noqa: S608 - constants


def version_key(namespace: str) -> str:
    return Keys(namespace).rules_version


def bump_version(r: redis.Redis, namespace: str) -> int:
    """Tell every alert instance to reload (called after a committed change)."""
    return int(r.incr(version_key(namespace)))


# ---------------------------------------------------------------- the alert stage's reads


def load_rules(conn: pg8000.native.Connection) -> list[dict[str, Any]]:
    """Every rule, inactive ones included (``mutt rules test`` explains them too)."""
    return parse_rules(load_rules_document(conn)[1])


def rules_digest(conn: pg8000.native.Connection) -> str:
    """The SHA-256 of every rule, as ``load_rules_document`` gives it with the rules."""
    return str(conn.run(_SELECT_DIGEST)[0][0])


def load_rules_document(conn: pg8000.native.Connection) -> tuple[str, str]:
    """(SHA-256 of the rules, the rules as one JSON document), from one snapshot."""
    digest, document = conn.run(_SELECT_DOCUMENT)[0]
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


def rule_count(conn: pg8000.native.Connection) -> int:
    return int(conn.run("SELECT count(*) FROM alert_rules")[0][0])


# ---------------------------------------------------------------- the catalog as a whole


@dataclass
class State:
    """Rules (id → stored values, in evaluation order), dev hosts and device teams."""

    rules: dict[int, dict[str, Any]] = field(default_factory=dict)
    hosts: set[str] = field(default_factory=set)
    teams: dict[str, str] = field(default_factory=dict)


def _row_values(row: Sequence[Any]) -> dict[str, Any]:
    return dict(zip(VALUE_KEYS, row[1:], strict=True))


def read_state(conn: pg8000.native.Connection) -> State:
    """What the database holds now, in the form a rules file is compared in."""
    state = State()
    for row in conn.run(_SELECT_RULES + " ORDER BY priority, id"):
        state.rules[int(row[0])] = _row_values(row)
    state.hosts = {str(r[0]) for r in conn.run("SELECT hostname FROM development_hosts")}
    state.teams = {
        str(h): str(t) for h, t in conn.run("SELECT hostname, team_assignment FROM device_teams")
    }
    return state


def read_rule(conn: pg8000.native.Connection, rule_id: int) -> dict[str, Any] | None:
    """One rule's values plus ``created_at`` / ``updated_at``, or ``None``."""
    rows = conn.run(
        f"SELECT id, {', '.join(VALUE_KEYS)}, created_at, updated_at"  # noqa: S608 - fixed
        " FROM alert_rules WHERE id = :id",
        id=rule_id,
    )
    if not rows:
        return None
    row = rows[0]
    values = _row_values(row[: len(VALUE_KEYS) + 1])
    values["created_at"], values["updated_at"] = row[-2], row[-1]
    return values


def rule_history(
    conn: pg8000.native.Connection, rule_id: int, limit: int = 5
) -> list[dict[str, Any]]:
    """A rule's most recent ``config_audit_log`` rows, newest first."""
    cols = ("changed_at", "changed_by", "operation", "reason", "old_values", "new_values")
    rows = conn.run(
        f"SELECT {', '.join(cols)} FROM config_audit_log"  # noqa: S608 - fixed columns
        " WHERE table_name = 'alert_rules' AND record_id = :rid"
        " ORDER BY changed_at DESC, id DESC LIMIT :n",
        rid=str(rule_id),
        n=limit,
    )
    return [dict(zip(cols, row, strict=True)) for row in rows]


# ---------------------------------------------------------------- writes


def _rule_rows(items: Sequence[tuple[int, Mapping[str, Any]]]) -> str:
    return orjson.dumps([{"id": rid, **values} for rid, values in items]).decode()


def delete_rules(conn: pg8000.native.Connection, ids: Sequence[int]) -> None:
    if ids:
        conn.run("DELETE FROM alert_rules WHERE id = ANY(:ids)", ids=list(ids))


def update_rules(
    conn: pg8000.native.Connection, updates: Sequence[tuple[int, Mapping[str, Any]]]
) -> None:
    """Rewrite the given rules' values in one statement."""
    if not updates:
        return
    sets = ", ".join(f"{k} = x.{k}" for k in VALUE_KEYS)
    conn.run(
        f"UPDATE alert_rules AS a SET {sets}, updated_at = now() FROM {_RECORDSET}"  # noqa: S608 - fixed column names
        " WHERE a.id = x.id",
        rows=_rule_rows(updates),
    )


def insert_rules(conn: pg8000.native.Connection, values: Sequence[Mapping[str, Any]]) -> list[int]:
    """Create rules in one statement; return their new ids, in order."""
    if not values:
        return []
    ids = [
        int(r[0])
        for r in conn.run(
            "SELECT nextval(pg_get_serial_sequence('alert_rules', 'id'))"
            " FROM generate_series(1, :n)",
            n=len(values),
        )
    ]
    columns = ", ".join(VALUE_KEYS)
    conn.run(
        f"INSERT INTO alert_rules (id, {columns}) SELECT id, {columns} FROM {_RECORDSET}",  # noqa: S608 - fixed column names
        rows=_rule_rows(list(zip(ids, values, strict=True))),
    )
    return ids


def write_reference(
    conn: pg8000.native.Connection,
    *,
    hosts_deleted: Sequence[str] = (),
    hosts_added: Sequence[str] = (),
    teams_deleted: Sequence[str] = (),
    teams_set: Mapping[str, str] | None = None,
) -> None:
    """Development hosts and device teams, four statements whatever their number."""

    def texts(items: Sequence[str]) -> str:
        return orjson.dumps(list(items)).decode()

    conn.run(
        "DELETE FROM development_hosts WHERE hostname IN"
        " (SELECT jsonb_array_elements_text(CAST(:h AS jsonb)))",
        h=texts(hosts_deleted),
    )
    conn.run(
        "INSERT INTO development_hosts (hostname)"
        " SELECT jsonb_array_elements_text(CAST(:h AS jsonb)) ON CONFLICT DO NOTHING",
        h=texts(hosts_added),
    )
    conn.run(
        "DELETE FROM device_teams WHERE hostname IN"
        " (SELECT jsonb_array_elements_text(CAST(:h AS jsonb)))",
        h=texts(teams_deleted),
    )
    conn.run(
        "INSERT INTO device_teams (hostname, team_assignment)"
        " SELECT key, value FROM jsonb_each_text(CAST(:t AS jsonb))"
        " ON CONFLICT (hostname) DO UPDATE SET team_assignment = EXCLUDED.team_assignment,"
        " updated_at = now()",
        t=orjson.dumps(dict(teams_set or {})).decode(),
    )


def lock_catalog(conn: pg8000.native.Connection) -> None:
    """Writers wait for each other; the alert stage's reads are not blocked."""
    conn.run("LOCK TABLE alert_rules, development_hosts, device_teams IN SHARE ROW EXCLUSIVE MODE")
