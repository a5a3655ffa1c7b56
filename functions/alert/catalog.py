"""Rules, development hosts and device teams as code: validate, then write.

Every entry is validated by the rule engine's own model before anything is
written (a regex RE2 refuses, a handling typo or a bad OID names the entry
and the field), and everything is written in one transaction followed by a
version bump, so all alert instances reload within a second.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pg8000.native
import redis

from functions.alert.cache import bump_version
from functions.alert.rules import Rule, RuleError, validate_rule


@dataclass
class Catalog:
    """A validated rules document."""

    rules: list[Rule] = field(default_factory=list)
    development_hosts: list[str] = field(default_factory=list)
    device_teams: dict[str, str] = field(default_factory=dict)


def parse_catalog(doc: object, origin: str = "rules file") -> Catalog:
    """Validate a loaded YAML/JSON document; ``RuleError``/``ValueError`` say what is wrong."""
    if not isinstance(doc, Mapping):
        raise ValueError(
            f"{origin}: expected a mapping with 'rules', 'development_hosts', 'device_teams'"
        )
    unknown = set(doc) - {"rules", "development_hosts", "device_teams"}
    if unknown:
        raise ValueError(f"{origin}: unknown section(s): {', '.join(sorted(map(str, unknown)))}")
    catalog = Catalog()
    raw_rules = doc.get("rules") or []
    if not isinstance(raw_rules, list):
        raise ValueError(f"{origin}: 'rules' must be a list")
    for number, raw in enumerate(raw_rules, 1):
        if not isinstance(raw, Mapping):
            raise ValueError(f"{origin} rule #{number}: must be a mapping")
        entry: dict[str, Any] = dict(raw)
        entry.setdefault("id", -number)  # a placeholder until the database assigns one
        catalog.rules.append(
            validate_rule(entry, where=f"{origin} #{number}", ignore_unknown=False)
        )
    hosts = doc.get("development_hosts") or []
    if not isinstance(hosts, list) or not all(isinstance(h, str) and h.strip() for h in hosts):
        raise ValueError(f"{origin}: 'development_hosts' must be a list of host names")
    catalog.development_hosts = sorted({h.strip().lower() for h in hosts})
    teams = doc.get("device_teams") or {}
    if not isinstance(teams, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) and k.strip() and v.strip()
        for k, v in teams.items()
    ):
        raise ValueError(f"{origin}: 'device_teams' must map host names to team names")
    catalog.device_teams = {k.strip().lower(): v.strip() for k, v in teams.items()}
    return catalog


def rule_count(conn: pg8000.native.Connection) -> int:
    return int(conn.run("SELECT count(*) FROM alert_rules")[0][0])


def insert_catalog(
    conn: pg8000.native.Connection, r: redis.Redis, namespace: str, catalog: Catalog
) -> None:
    """Add the catalog's entries in one transaction, then tell every instance."""
    conn.run("BEGIN")
    try:
        for rule in catalog.rules:
            conn.run(
                "INSERT INTO alert_rules (match_type, match_string, trap_oid, syslog_severity,"
                " priority, prod_handling, dev_handling, team_assignment, is_active)"
                " VALUES (:mt, :ms, :oid, :sev, :prio, :prod, :dev, :team, :active)",
                mt=rule.match_type.value,
                ms=rule.match_string,
                oid=rule.trap_oid,
                sev=int(rule.syslog_severity) if rule.syslog_severity is not None else None,
                prio=rule.priority,
                prod=rule.prod_handling.value,
                dev=rule.dev_handling.value,
                team=rule.team_assignment,
                active=rule.is_active,
            )
        for host in catalog.development_hosts:
            conn.run(
                "INSERT INTO development_hosts (hostname) VALUES (:h) ON CONFLICT DO NOTHING",
                h=host,
            )
        for host, team in catalog.device_teams.items():
            conn.run(
                "INSERT INTO device_teams (hostname, team_assignment) VALUES (:h, :t)"
                " ON CONFLICT (hostname) DO UPDATE SET team_assignment = EXCLUDED.team_assignment,"
                " updated_at = now()",
                h=host,
                t=team,
            )
        conn.run("COMMIT")
    except Exception:
        conn.run("ROLLBACK")
        raise
    bump_version(r, namespace)


__all__ = ["Catalog", "RuleError", "insert_catalog", "parse_catalog", "rule_count"]
