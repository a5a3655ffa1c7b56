"""Builders of valid MUTT events and alerts for tests."""

from __future__ import annotations

from datetime import UTC, datetime

from cloudevents.http import CloudEvent

from shared.envelope import make_event
from shared.models import (
    TYPE_ACCEPTED,
    TYPE_ALERT,
    Alert,
    Event,
    Handling,
    Severity,
    alert_id_for,
    event_id_for,
)


def event(
    i: int, message: str | None = None, hostname: str | None = None, **extra: object
) -> Event:
    now = datetime.now(UTC)
    return Event.model_validate(
        {
            "event_id": event_id_for("/t", str(i)),
            "source": "/t",
            "id": str(i),
            "hostname": hostname or f"h{i % 7}",
            "time": now,
            "message": message if message is not None else f"message {i}",
            "received_at": now,
            **extra,
        }
    )


def accepted_event(
    i: int, message: str | None = None, hostname: str | None = None, **extra: object
) -> CloudEvent:
    ev = event(i, message, hostname, **extra)
    return make_event(TYPE_ACCEPTED, "/mutt/ingest", ev, id=str(ev.event_id))


def alert(i: int, team: str = "NETO") -> Alert:
    ev = event(i)
    return Alert(
        alert_id=alert_id_for(ev.event_id, "rule:1"),
        event_id=ev.event_id,
        rule_id=1,
        handling=Handling.TICKET_ONLY,
        team=team,
        environment="prod",
        severity=Severity.WARNING,
        severity_name="warning",
        summary=f"{ev.hostname}: {ev.message}",
        dedup_key=f"mutt:1:{ev.hostname}",
        raised_at=ev.received_at,
        event=ev,
    )


def alert_event(i: int, team: str = "NETO") -> CloudEvent:
    a = alert(i, team)
    return make_event(TYPE_ALERT, "/mutt/alert", a, id=str(a.alert_id))
