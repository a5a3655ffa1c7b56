"""Rules documents: validated by the rule engine's own model before anything is written.

A regex RE2 refuses, a handling typo or a bad OID names the entry and the
field. ``mutt rules apply`` checks a whole file here; the admin API checks
one rule with ``check_rule_entry``, the same function each rule of a file
goes through.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from functions.alert.catalog.tables import VALUE_KEYS
from functions.alert.rules import Rule, RuleError, RuleSet, validate_rule
from shared.models import Severity


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


# ---------------------------------------------------------------- rules as code
# ``mutt rules export`` / ``mutt rules apply``: a document that round-trips
# through the database with no diff, and a check that reports every problem
# of a file at once (position, id, field, why) instead of the first.

RULE_KEYS = VALUE_KEYS  # the catalog's one column list (catalog/tables.py)


class CatalogInvalid(ValueError):
    """A rules document with problems; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def rule_values(rule: Rule, description: str | None = None) -> dict[str, Any]:
    """A rule as ``alert_rules`` stores it: what diffs compare and audit rows record."""
    return {
        "match_type": rule.match_type.value,
        "match_string": rule.match_string,
        "trap_oid": rule.trap_oid,
        "syslog_severity": int(rule.syslog_severity) if rule.syslog_severity is not None else None,
        "priority": rule.priority,
        "prod_handling": rule.prod_handling.value,
        "dev_handling": rule.dev_handling.value,
        "team_assignment": rule.team_assignment,
        "is_active": rule.is_active,
        "description": description,
    }


def rule_document(rule_id: int | None, values: Mapping[str, Any]) -> dict[str, Any]:
    """A rule's entry in a rules file: id first, unset fields left out, severity by name."""
    doc: dict[str, Any] = {} if rule_id is None else {"id": rule_id}
    for key in RULE_KEYS:
        value = values.get(key)
        if value is None:
            continue
        if key == "syslog_severity":
            with contextlib.suppress(ValueError):  # a bad stored value is shown as is
                value = Severity(int(value)).label
        doc[key] = value
    return doc


def catalog_document(
    rules: Sequence[tuple[int | None, Mapping[str, Any]]],
    development_hosts: Sequence[str],
    device_teams: Mapping[str, str],
) -> dict[str, Any]:
    """The whole rules file: rules in the given order, hosts and teams sorted."""
    return {
        "rules": [rule_document(rule_id, values) for rule_id, values in rules],
        "development_hosts": sorted(development_hosts),
        "device_teams": {host: device_teams[host] for host in sorted(device_teams)},
    }


def _where(origin: str, number: int, line: int | None, rule_id: object) -> str:
    at = f"{origin}:{line}" if line else origin
    named = f" (id {rule_id})" if rule_id is not None else ""
    return f"{at}: rule #{number}{named}"


@dataclass
class _Checked:
    """What checking the rules of a file found so far."""

    problems: list[str] = field(default_factory=list)
    clean: list[object] = field(default_factory=list)
    descriptions: list[str | None] = field(default_factory=list)
    ids: dict[int, int] = field(default_factory=dict)  # given id -> rule number
    names: dict[int, str] = field(default_factory=dict)  # id or placeholder -> where


def _check_rule(
    found: _Checked, raw: object, number: int, where_of: Callable[[object], str]
) -> None:
    """Check one entry of ``rules``; record its cleaned form and every problem."""
    if not isinstance(raw, Mapping):
        found.problems.append(f"{where_of(None)}: must be a mapping of fields")
        found.clean.append(raw)
        found.descriptions.append(None)
        return
    entry = dict(raw)
    rule_id = entry.get("id")
    where = where_of(rule_id)
    if rule_id is None:
        entry.pop("id", None)
    elif isinstance(rule_id, bool) or not isinstance(rule_id, int) or rule_id <= 0:
        found.problems.append(
            f"{where}: id: must be a positive rule id (as exported); leave it out to create"
        )
    elif rule_id in found.ids:
        found.problems.append(
            f"{where}: id: {rule_id} is used twice (also by rule #{found.ids[rule_id]})"
        )
    else:
        found.ids[rule_id] = number
    description = entry.pop("description", None)
    if description is not None and not isinstance(description, str):
        found.problems.append(f"{where}: description: must be text")
        description = None
    found.descriptions.append(description)
    found.clean.append(entry)
    checked = {"id": -number, **entry}
    found.names[checked["id"] if isinstance(checked["id"], int) else -number] = where
    try:
        validate_rule(checked, where=where, ignore_unknown=False)
    except RuleError as exc:
        found.problems.extend(f"{where}: {name}: {reason}" for name, reason in exc.problems)


def check_rule_entry(entry: Mapping[str, Any]) -> dict[str, Any]:
    """One rule (fields as in a rules file, no id) as ``alert_rules`` stores it.

    The checks of ``check_catalog`` for one rule: the engine's model, then
    the compiled rule set the alert stage runs. ``RuleError.problems`` name
    each bad field.
    """
    fields = {k: v for k, v in entry.items() if k not in ("id", "description")}
    description = entry.get("description")
    if description is not None and (not isinstance(description, str) or "\x00" in description):
        raise RuleError("new", [("description", "must be text without NUL characters")])
    rule = validate_rule({"id": -1, **fields}, where="new", ignore_unknown=False)
    for err in RuleSet.compile([rule]).rejected:
        raise RuleError("new", list(err.problems))
    return rule_values(rule, description)


def check_catalog(
    doc: object, origin: str = "rules file", lines: Sequence[int] = ()
) -> tuple[Catalog, list[str | None]]:
    """Validate a rules file completely; return it with each rule's description.

    Unlike ``parse_catalog`` this collects every problem (``CatalogInvalid``)
    naming the rule by position (and ``lines[i]``, its line in the file) and
    id, checks that ids are positive and unique, and compiles the rule set
    with the engine the alert stage runs. Rules without ``id`` get a negative
    placeholder id, as in ``parse_catalog``.
    """
    if not isinstance(doc, Mapping):
        raise CatalogInvalid(
            [f"{origin}: expected a mapping with 'rules', 'development_hosts', 'device_teams'"]
        )
    raw_rules = doc.get("rules") or []
    if not isinstance(raw_rules, list):
        raise CatalogInvalid([f"{origin}: 'rules' must be a list"])
    found = _Checked()
    for number, raw in enumerate(raw_rules, 1):
        line = lines[number - 1] if number - 1 < len(lines) else None

        def where_of(rule_id: object, number: int = number, line: int | None = line) -> str:
            return _where(origin, number, line, rule_id)

        _check_rule(found, raw, number, where_of)
    try:
        parse_catalog({k: v for k, v in doc.items() if k != "rules"}, origin)
    except ValueError as exc:
        found.problems.append(str(exc))
    if found.problems:
        raise CatalogInvalid(found.problems)
    catalog = parse_catalog({**doc, "rules": found.clean}, origin)
    for err in RuleSet.compile(catalog.rules).rejected:
        where = found.names.get(int(err.rule), f"{origin}: rule {err.rule}")
        found.problems.extend(f"{where}: {name}: {reason}" for name, reason in err.problems)
    if found.problems:
        raise CatalogInvalid(found.problems)
    return catalog, found.descriptions
