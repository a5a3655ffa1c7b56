"""One edit at a time (a rule, a development host, a device team): the admin API's writes.

Each edit derives the desired catalog from the current one under the
catalog lock and goes through ``build_plan`` / ``commit_plan`` like a whole
``mutt rules apply``: the same SQL, the same ``config_audit_log`` rows, then
the same version bump. Refusals are exceptions the caller maps to answers.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

import pg8000.native
import redis

from functions.alert.catalog.document import parse_catalog
from functions.alert.catalog.plan import (
    CatalogMoved,
    NotInCatalog,
    PlanError,
    build_plan,
    commit_plan,
    desired_from,
    etag,
)
from functions.alert.catalog.tables import TABLE_RULES, State, bump_version
from shared.config_audit import ConfigChange


class AlreadyInCatalog(PlanError):
    """The host or team an edit would create exists already."""


def clean_host(hostname: object) -> str:
    """A host name as the catalog stores it (``ValueError`` says what is wrong)."""
    if not isinstance(hostname, str) or not 0 < len(hostname.strip()) <= 255:
        raise ValueError("must be a host name of 1 to 255 characters")
    if any(c.isspace() or not c.isprintable() for c in hostname.strip()):
        raise ValueError("must not contain spaces or control characters")
    doc = parse_catalog({"development_hosts": [hostname]}, "hostname")
    return doc.development_hosts[0]


def clean_team(hostname: object, team: object) -> tuple[str, str]:
    if not isinstance(team, str) or not 0 < len(team.strip()) <= 128:
        raise ValueError("team_assignment must be a team name of 1 to 128 characters")
    if any(not c.isprintable() for c in team):
        raise ValueError("team_assignment must not contain control characters")
    host = clean_host(hostname)
    teams = parse_catalog({"device_teams": {host: team}}, "device_teams").device_teams
    return host, teams[host]


def _write(
    conn: pg8000.native.Connection,
    r: redis.Redis,
    namespace: str,
    plan: Callable[[State], list[ConfigChange]],
    who: str,
    reason: str,
) -> list[ConfigChange]:
    changes = commit_plan(
        conn, plan, changed_by=who, reason=reason, correlation_id=str(uuid.uuid4())
    )
    if changes:
        bump_version(r, namespace)
    return changes


def _check_etag(state: State, rule_id: int, if_match: str | None) -> None:
    if rule_id not in state.rules:
        raise NotInCatalog(f"no rule with id {rule_id}")
    if if_match is not None and if_match.strip() != "*":
        tags = {t.strip() for t in if_match.split(",")}
        if etag(state.rules[rule_id]) not in tags:
            raise CatalogMoved(f"rule {rule_id} changed since you read it (ETag differs)")


def create_rule(
    conn: pg8000.native.Connection,
    r: redis.Redis,
    namespace: str,
    values: Mapping[str, Any],
    *,
    who: str,
    reason: str,
) -> int:
    """Add one rule (``values`` from ``check_rule_entry``); return its id."""

    def plan(state: State) -> list[ConfigChange]:
        desired = desired_from(state)
        desired.rules.append((None, dict(values)))
        return build_plan(state, desired, prune=False)

    changes = _write(conn, r, namespace, plan, who, reason)
    return int(next(c.record_id for c in changes if c.table_name == TABLE_RULES))


def update_rule(
    conn: pg8000.native.Connection,
    r: redis.Redis,
    namespace: str,
    rule_id: int,
    values: Mapping[str, Any] | Callable[[Mapping[str, Any]], Mapping[str, Any]],
    *,
    who: str,
    reason: str,
    if_match: str | None = None,
) -> dict[str, Any]:
    """Replace one rule's values (or apply a function to them); return the stored values."""
    result: dict[str, Any] = {}

    def plan(state: State) -> list[ConfigChange]:
        _check_etag(state, rule_id, if_match)
        new = dict(values(state.rules[rule_id]) if callable(values) else values)
        desired = desired_from(state)
        desired.rules = [(rid, new if rid == rule_id else v) for rid, v in desired.rules]
        result.update(new)
        return build_plan(state, desired, prune=False)

    _write(conn, r, namespace, plan, who, reason)
    return result


def delete_rule(
    conn: pg8000.native.Connection,
    r: redis.Redis,
    namespace: str,
    rule_id: int,
    *,
    who: str,
    reason: str,
    if_match: str | None = None,
) -> None:
    def plan(state: State) -> list[ConfigChange]:
        _check_etag(state, rule_id, if_match)
        desired = desired_from(state)
        desired.rules = [(rid, v) for rid, v in desired.rules if rid != rule_id]
        return build_plan(state, desired, prune=True)

    _write(conn, r, namespace, plan, who, reason)


def add_dev_host(
    conn: pg8000.native.Connection,
    r: redis.Redis,
    namespace: str,
    host: str,
    *,
    who: str,
    reason: str,
) -> None:
    def plan(state: State) -> list[ConfigChange]:
        if host in state.hosts:
            raise AlreadyInCatalog(f"{host} is already a development host")
        desired = desired_from(state)
        desired.hosts.add(host)
        return build_plan(state, desired, prune=False)

    _write(conn, r, namespace, plan, who, reason)


def delete_dev_host(
    conn: pg8000.native.Connection,
    r: redis.Redis,
    namespace: str,
    host: str,
    *,
    who: str,
    reason: str,
) -> None:
    def plan(state: State) -> list[ConfigChange]:
        if host not in state.hosts:
            raise NotInCatalog(f"{host} is not a development host")
        desired = desired_from(state)
        desired.hosts.discard(host)
        return build_plan(state, desired, prune=True)

    _write(conn, r, namespace, plan, who, reason)


def set_team(
    conn: pg8000.native.Connection,
    r: redis.Redis,
    namespace: str,
    host: str,
    team: str,
    *,
    who: str,
    reason: str,
    must_exist: bool | None = None,
) -> bool:
    """Assign a device's team; ``must_exist`` True: update only, False: create only.

    Returns whether the mapping was created.
    """
    created: list[bool] = []

    def plan(state: State) -> list[ConfigChange]:
        exists = host in state.teams
        if must_exist is True and not exists:
            raise NotInCatalog(f"{host} has no team assignment")
        if must_exist is False and exists:
            raise AlreadyInCatalog(f"{host} already has a team assignment")
        created.append(not exists)
        desired = desired_from(state)
        desired.teams[host] = team
        return build_plan(state, desired, prune=False)

    _write(conn, r, namespace, plan, who, reason)
    return created[-1]


def delete_team(
    conn: pg8000.native.Connection,
    r: redis.Redis,
    namespace: str,
    host: str,
    *,
    who: str,
    reason: str,
) -> None:
    def plan(state: State) -> list[ConfigChange]:
        if host not in state.teams:
            raise NotInCatalog(f"{host} has no team assignment")
        desired = desired_from(state)
        del desired.teams[host]
        return build_plan(state, desired, prune=True)

    _write(conn, r, namespace, plan, who, reason)
