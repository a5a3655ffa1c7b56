"""Small builders for rule-engine tests: rules, events, and raw rows."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from functions.alert.rules import Rule
from shared.models import Event, Severity


def row(rule_id: int = 1, **fields: Any) -> dict[str, Any]:
    """A raw rule row (as from PostgreSQL or YAML) with sensible defaults."""
    base: dict[str, Any] = {
        "id": rule_id,
        "match_type": "contains",
        "match_string": "link down",
        "priority": 10,
        "prod_handling": "Page_and_ticket",
        "dev_handling": "Ticket_only",
        "team_assignment": "NetOps",
    }
    base.update(fields)
    return base


def rule(rule_id: int = 1, **fields: Any) -> Rule:
    """A validated rule."""
    return Rule.model_validate(row(rule_id, **fields))


def event(
    message: str = "",
    *,
    severity: Severity | int | None = None,
    trap_oid: str | None = None,
    hostname: str = "router1.dc.example.com",
) -> Event:
    """A real normalized ``Event`` (the contract the alert function receives)."""
    now = datetime.now(UTC)
    return Event(
        event_id=uuid.uuid4(),
        source="/test",
        id=str(uuid.uuid4()),
        hostname=hostname,
        time=now,
        message=message,
        severity=Severity(severity) if severity is not None else None,
        trap_oid=trap_oid,
        received_at=now,
    )


@dataclass(frozen=True)
class Plain:
    """The three fields matching reads, without pydantic (fast for property tests)."""

    message: str
    severity: Severity | None
    trap_oid: str | None
