"""Every write to the rule catalog: a plan of changes, applied under a lock, audited.

``mutt rules apply`` plans a whole file against the database; the admin API
plans one edit (create a rule, change one, add a host ...) the same way: a
desired catalog is derived from the current one, ``build_plan`` lists the
changes, and ``commit_plan`` applies them in one transaction under a table
lock with one ``config_audit_log`` row per change. The caller then bumps the
rules version (``bump_version``) so every alert instance reloads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson
import pg8000.native
import redis

from functions.alert.catalog.document import Catalog, rule_values
from functions.alert.catalog.tables import (
    TABLE_HOSTS,
    TABLE_RULES,
    TABLE_TEAMS,
    State,
    bump_version,
    delete_rules,
    insert_rules,
    lock_catalog,
    read_state,
    update_rules,
    write_reference,
)
from shared.config_audit import ConfigChange, write_config_audit


class PlanError(ValueError):
    """A change the catalog refuses; nothing was changed."""


class UnknownRuleIds(PlanError):
    """Rule ids that name no rule in the database."""

    def __init__(self, ids: Sequence[int]) -> None:
        self.ids = list(ids)
        listed = ", ".join(map(str, ids[:10])) + (" ..." if len(ids) > 10 else "")
        super().__init__(
            f"rule id(s) {listed} do not exist in the database: an id names an existing rule"
            " (from `mutt rules export`); leave it out to create a rule. Nothing was changed"
        )


class CatalogMoved(PlanError):
    """The catalog changed between showing a diff (or an ETag) and applying it."""


class NotInCatalog(PlanError, LookupError):
    """The rule, host or team an edit names does not exist."""


@dataclass
class Desired:
    """A validated catalog: (id or None, values) per rule, hosts, teams."""

    rules: list[tuple[int | None, dict[str, Any]]]
    hosts: set[str]
    teams: dict[str, str]


def desired_from(state: State) -> Desired:
    """The catalog as it is, to be edited into what it should be."""
    return Desired(
        [(rid, dict(values)) for rid, values in state.rules.items()],
        set(state.hosts),
        dict(state.teams),
    )


def etag(values: object) -> str:
    """A strong ETag of a rule's (or any record's) stored values."""
    digest = hashlib.sha256(orjson.dumps(values, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f'"{digest[:20]}"'


def build_plan(state: State, desired: Desired, *, prune: bool) -> list[ConfigChange]:
    """Every change that makes the database equal ``desired`` (creates: record id ``new#N``)."""
    unknown = [rid for rid, _ in desired.rules if rid is not None and rid not in state.rules]
    if unknown:
        raise UnknownRuleIds(unknown)
    changes: list[ConfigChange] = []
    kept: set[int] = set()
    for number, (rid, values) in enumerate(desired.rules, 1):
        if rid is None:
            changes.append(ConfigChange("CREATE", TABLE_RULES, f"new#{number}", None, values))
            continue
        kept.add(rid)
        if state.rules[rid] != values:
            changes.append(ConfigChange("UPDATE", TABLE_RULES, str(rid), state.rules[rid], values))
    if prune:
        changes += [
            ConfigChange("DELETE", TABLE_RULES, str(rid), values, None)
            for rid, values in state.rules.items()
            if rid not in kept
        ]
    changes += [
        ConfigChange("CREATE", TABLE_HOSTS, h, None, {"hostname": h})
        for h in sorted(desired.hosts - state.hosts)
    ]
    if prune:
        changes += [
            ConfigChange("DELETE", TABLE_HOSTS, h, {"hostname": h}, None)
            for h in sorted(state.hosts - desired.hosts)
        ]
    for host in sorted(desired.teams):
        new = {"team_assignment": desired.teams[host]}
        if host not in state.teams:
            changes.append(ConfigChange("CREATE", TABLE_TEAMS, host, None, new))
        elif state.teams[host] != desired.teams[host]:
            old = {"team_assignment": state.teams[host]}
            changes.append(ConfigChange("UPDATE", TABLE_TEAMS, host, old, new))
    if prune:
        changes += [
            ConfigChange("DELETE", TABLE_TEAMS, h, {"team_assignment": t}, None)
            for h, t in sorted(state.teams.items())
            if h not in desired.teams
        ]
    return changes


def _of(changes: Sequence[ConfigChange], table: str, *ops: str) -> list[ConfigChange]:
    return [c for c in changes if c.table_name == table and c.operation in ops]


def _apply(conn: pg8000.native.Connection, changes: list[ConfigChange]) -> None:
    """Write the changes (a handful of statements whatever their number); fill in created ids."""
    delete_rules(conn, [int(c.record_id) for c in _of(changes, TABLE_RULES, "DELETE")])
    update_rules(
        conn, [(int(c.record_id), c.new_values or {}) for c in _of(changes, TABLE_RULES, "UPDATE")]
    )
    creates = [
        i for i, c in enumerate(changes) if c.table_name == TABLE_RULES and c.operation == "CREATE"
    ]
    ids = insert_rules(conn, [changes[i].new_values or {} for i in creates])
    for i, rid in zip(creates, ids, strict=True):
        changes[i] = replace(changes[i], record_id=str(rid))
    write_reference(
        conn,
        hosts_deleted=[c.record_id for c in _of(changes, TABLE_HOSTS, "DELETE")],
        hosts_added=[c.record_id for c in _of(changes, TABLE_HOSTS, "CREATE")],
        teams_deleted=[c.record_id for c in _of(changes, TABLE_TEAMS, "DELETE")],
        teams_set={
            c.record_id: str((c.new_values or {}).get("team_assignment"))
            for c in _of(changes, TABLE_TEAMS, "CREATE", "UPDATE")
        },
    )


def commit_plan(
    conn: pg8000.native.Connection,
    plan: Callable[[State], list[ConfigChange]],
    *,
    changed_by: str,
    reason: str,
    correlation_id: str,
) -> list[ConfigChange]:
    """Lock, plan against the current catalog, apply, audit, commit: all or nothing.

    Returns the applied changes with the ids of created rules. The caller
    bumps the rules version once this returned (after the commit).
    """
    conn.run("BEGIN")
    try:
        lock_catalog(conn)
        changes = plan(read_state(conn))
        _apply(conn, changes)
        write_config_audit(
            conn, changes, changed_by=changed_by, reason=reason, correlation_id=correlation_id
        )
        conn.run("COMMIT")
    except BaseException:
        conn.run("ROLLBACK")
        raise
    return changes


def apply_plan(
    conn: pg8000.native.Connection,
    desired: Desired,
    shown: list[ConfigChange],
    *,
    prune: bool,
    changed_by: str,
    reason: str,
    correlation_id: str,
) -> list[ConfigChange]:
    """Apply a whole catalog if nothing moved since ``shown`` (the diff the operator saw)."""

    def plan(state: State) -> list[ConfigChange]:
        changes = build_plan(state, desired, prune=prune)
        if changes != shown:
            raise CatalogMoved(
                "the rules changed in the database since the diff was computed;"
                " nothing was changed, run the command again"
            )
        return changes

    return commit_plan(
        conn, plan, changed_by=changed_by, reason=reason, correlation_id=correlation_id
    )


def insert_catalog(
    conn: pg8000.native.Connection, r: redis.Redis, namespace: str, catalog: Catalog
) -> None:
    """Add a catalog's entries in one transaction, then tell every instance.

    For seeding (the sample rules of a fresh ``mutt run``, tests): not audited.
    """
    conn.run("BEGIN")
    try:
        insert_rules(conn, [rule_values(rule) for rule in catalog.rules])
        write_reference(conn, hosts_added=catalog.development_hosts, teams_set=catalog.device_teams)
        conn.run("COMMIT")
    except Exception:
        conn.run("ROLLBACK")
        raise
    bump_version(r, namespace)


# ---------------------------------------------------------------- diff text


def render_plan(changes: Sequence[ConfigChange]) -> str:
    """The diff, grouped by table: + created, ~ changed, - deleted."""
    lines: list[str] = []
    sign = {"CREATE": "+", "UPDATE": "~", "DELETE": "-"}
    for table in (TABLE_RULES, TABLE_HOSTS, TABLE_TEAMS):
        mine = [c for c in changes if c.table_name == table]
        if not mine:
            continue
        lines.append(f"{table}:")
        for c in mine:
            if table == TABLE_RULES:
                name = "new rule" if c.record_id.startswith("new#") else f"rule {c.record_id}"
                if c.record_id.startswith("new#"):
                    name += f" (#{c.record_id[4:]} in the file)"
                if c.operation == "UPDATE":
                    text = changed_fields(c.old_values, c.new_values)
                else:
                    text = describe_rule(c.new_values or c.old_values or {})
            elif table == TABLE_TEAMS:
                name = c.record_id
                old = (c.old_values or {}).get("team_assignment")
                new = (c.new_values or {}).get("team_assignment")
                text = {"CREATE": f"{new}", "UPDATE": f"{old} → {new}", "DELETE": f"(was {old})"}[
                    c.operation
                ]
            else:
                name, text = c.record_id, ""
            lines.append(f"  {sign[c.operation]} {name}{': ' + text if text else ''}")
    return "\n".join(lines)


def summarize(changes: Sequence[ConfigChange]) -> str:
    counts: dict[tuple[str, str], int] = {}
    for c in changes:
        counts[(c.table_name, c.operation)] = counts.get((c.table_name, c.operation), 0) + 1
    parts = []
    for table, label in (
        (TABLE_RULES, "rules"),
        (TABLE_HOSTS, "dev hosts"),
        (TABLE_TEAMS, "teams"),
    ):
        made = [
            f"{counts[(table, op)]} {word}"
            for op, word in (("CREATE", "created"), ("UPDATE", "changed"), ("DELETE", "deleted"))
            if counts.get((table, op))
        ]
        if made:
            parts.append(f"{label}: {', '.join(made)}")
    return "; ".join(parts) if parts else "no changes"


def shorten(text: str | None, width: int) -> str:
    """One line, at most ``width`` characters."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def changed_fields(old: Any, new: Any) -> str:
    """``priority 5 → 7; team 'A' → 'B'``: the fields that differ."""
    old, new = old or {}, new or {}
    parts = [
        f"{key} {shorten(repr(old.get(key)), 40)} → {shorten(repr(new.get(key)), 40)}"
        for key in dict.fromkeys([*old, *new])
        if old.get(key) != new.get(key)
    ]
    return "; ".join(parts)


def describe_rule(values: Any) -> str:
    """One line for a rule in diffs and audit listings."""
    what = values.get("match_string") or values.get("trap_oid") or ""
    return (
        f"{values.get('match_type')} '{shorten(str(what), 60)}', priority {values.get('priority')}"
        f" → {values.get('team_assignment')}"
        f" ({values.get('prod_handling')}/{values.get('dev_handling')})"
        + ("" if values.get("is_active", True) else ", inactive")
    )
