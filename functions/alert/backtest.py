"""Rule backtests: what a candidate rules file would have changed on past events.

Each audited event (``event_audit_log.event`` holds it whole) is decided
twice with the engine the alert stage runs (``RuleSet.match`` + ``DevHosts``):
once by the baseline (the rules in the database now, or what the audit
recorded at the time) and once by the candidate. Differences are grouped by
kind and by (before, after), with a few sample events each, so a reviewer
sees "rule 12 would now page NetOps for 340 events" rather than 340 lines.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from functions.alert.correlation.alertmanager import resolution_of
from functions.alert.rules import DevHosts, RuleSet
from shared.models import Handling, Severity

ChangeKind = Literal["new_alert", "lost_alert", "handling", "team", "rule"]
KINDS: tuple[ChangeKind, ...] = ("new_alert", "lost_alert", "handling", "team", "rule")
KIND_TITLES = {
    "new_alert": "new alerts",
    "lost_alert": "lost alerts",
    "handling": "handling changes",
    "team": "team changes",
    "rule": "other rule, same outcome",
}
SAMPLES = 3


@dataclass(frozen=True, slots=True)
class Replayed:
    """The fields of an audited event that deciding reads (cheaper than the full model)."""

    hostname: str
    message: str
    severity: Severity | None
    trap_oid: str | None
    resolution: bool = False  # an Alertmanager resolution: it resolves, never raises

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Replayed:
        raw = doc.get("severity")
        severity = Severity(int(raw)) if isinstance(raw, int) and 0 <= raw <= 7 else None
        oid = doc.get("trap_oid")
        attributes = doc.get("attributes")
        return cls(
            hostname=str(doc.get("hostname") or ""),
            message=str(doc.get("message") or ""),
            severity=severity,
            trap_oid=str(oid) if oid else None,
            resolution=isinstance(attributes, dict)
            and resolution_of(doc.get("source_type"), attributes),
        )


@dataclass(frozen=True, slots=True)
class Decision:
    """What a rule set decides for one event (``handling`` None: unhandled)."""

    rule_id: int | None
    handling: str | None
    team: str | None

    @property
    def alerts(self) -> bool:
        return self.handling is not None and self.handling != Handling.IGNORE.value

    def label(self) -> str:
        if self.rule_id is None:
            return "unhandled"
        rule = f"rule {self.rule_id}" if self.rule_id > 0 else f"new rule #{-self.rule_id}"
        return f"{rule}: {self.handling} {self.team}"


UNHANDLED = Decision(None, None, None)


def decide(rules: RuleSet, dev_hosts: DevHosts, event: Replayed) -> Decision:
    """The alert stage's decision for ``event`` (without unhandled counting)."""
    if event.resolution:  # whatever rule matches it, the stage raises no alert for it
        return UNHANDLED
    rule = rules.match(event)
    if rule is None:
        return UNHANDLED
    _, handling = dev_hosts.decide(rule, event.hostname)
    return Decision(rule.id, handling.value, rule.team_assignment)


def recorded(rule_id: int | None, handling: str, team: str | None) -> Decision:
    """The decision an audit row recorded (Unhandled and Clear rows raised no rule alert)."""
    if rule_id is None or handling in ("Unhandled", "Clear"):
        return UNHANDLED
    return Decision(rule_id, handling, team)


def kind_of(before: Decision, after: Decision) -> ChangeKind | None:
    if before.alerts != after.alerts:
        return "new_alert" if after.alerts else "lost_alert"
    if before.alerts and before.handling != after.handling:
        return "handling"
    if before.alerts and before.team != after.team:
        return "team"
    if before.rule_id != after.rule_id and before.rule_id is not None:
        return "rule"
    return None


@dataclass
class Group:
    """Events with the same kind of change and the same before and after."""

    kind: ChangeKind
    before: Decision
    after: Decision
    count: int = 0
    samples: list[str] = field(default_factory=list)


@dataclass
class Report:
    """Counts per kind and the groups behind them."""

    events: int = 0
    unchanged: int = 0
    groups: dict[tuple[ChangeKind, Decision, Decision], Group] = field(default_factory=dict)

    def add(self, event: Replayed, before: Decision, after: Decision) -> None:
        self.events += 1
        kind = kind_of(before, after)
        if kind is None:
            self.unchanged += 1
            return
        group = self.groups.get((kind, before, after))
        if group is None:
            group = self.groups[(kind, before, after)] = Group(kind, before, after)
        group.count += 1
        if len(group.samples) < SAMPLES:
            group.samples.append(f"{event.hostname}: {' '.join(event.message.split())[:160]}")

    def count(self, kind: ChangeKind) -> int:
        return sum(g.count for g in self.groups.values() if g.kind == kind)

    def ordered(self, kind: ChangeKind) -> list[Group]:
        return sorted((g for g in self.groups.values() if g.kind == kind), key=lambda g: -g.count)
