"""alert: decide what each accepted event means.

Foundation version: every event becomes a Ticket_only alert for the default
team. The rule engine (issue "alert") replaces ``decide``.
"""

from __future__ import annotations

from collections.abc import Sequence

from cloudevents.http import CloudEvent
from pydantic import ValidationError

from shared.envelope import make_event
from shared.handler import Outcome
from shared.models import (
    TYPE_ACCEPTED,
    TYPE_ALERT,
    Alert,
    Event,
    Handling,
    Severity,
    alert_id_for,
    utcnow,
)

SOURCE = "/mutt/alert"


class AlertHandler:
    """Accepted events in, raised alerts out."""

    stage = "alert"

    def __init__(self, default_team: str) -> None:
        self.default_team = default_team

    def handle(self, events: Sequence[CloudEvent]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for ce in events:
            if ce["type"] != TYPE_ACCEPTED:
                outcomes.append(Outcome.reject(f"alert takes {TYPE_ACCEPTED}, not {ce['type']}"))
                continue
            try:
                event = Event.model_validate(ce.data)
            except ValidationError as exc:
                err = exc.errors()[0]
                where = ".".join(str(p) for p in err["loc"]) or "data"
                outcomes.append(Outcome.reject(f"invalid event: {where}: {err['msg']}"))
                continue
            alert = self.decide(event)
            outcomes.append(
                Outcome.ok(make_event(TYPE_ALERT, SOURCE, alert, id=str(alert.alert_id)))
            )
        return outcomes

    def decide(self, event: Event) -> Alert:
        severity = event.severity if event.severity is not None else Severity.WARNING
        return Alert(
            alert_id=alert_id_for(event.event_id, "default"),
            event_id=event.event_id,
            rule_id="unhandled",
            handling=Handling.TICKET_ONLY,
            team=self.default_team,
            environment="prod",
            severity=severity,
            severity_name=severity.label,
            summary=f"{event.hostname}: {event.message[:200]}",
            dedup_key=f"{event.hostname}:{event.event_id}",
            raised_at=utcnow(),
            event=event,
        )
