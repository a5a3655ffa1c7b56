"""alert: decide what each accepted event means and who must act.

Per batch: every event is matched against the cached rule set (first match
by priority, then rule id). A matched event is audited (one record per
event, written to PostgreSQL by the audit writer) and, unless its handling
for the host's environment is ``Ignore``, raises an alert carrying the
handling, the team and the event's own severity. Unmatched events are
counted per host and fingerprint; crossing the threshold raises one
meta-alert for the host's team.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cloudevents.http import CloudEvent
from pydantic import ValidationError

from functions.alert.cache import RuleCache, Snapshot
from functions.alert.rules import Rule
from functions.alert.unhandled import Fired, UnhandledCounter
from shared.dynconfig import DynamicConfig
from shared.envelope import make_event
from shared.handler import Outcome
from shared.metrics import DECISIONS, META_ALERTS, RULES_MATCHED, UNHANDLED_EVENTS
from shared.models import (
    TYPE_ACCEPTED,
    TYPE_ALERT,
    TYPE_AUDIT,
    Alert,
    Event,
    Handling,
    Severity,
    alert_id_for,
    utcnow,
)
from shared.tracing import context_from, current_extensions, tracer

SOURCE = "/mutt/alert"
META_HOST_PREFIX = "unhandled"


class AlertHandler:
    """Accepted events in; alerts and audit records out."""

    stage = "alert"

    def __init__(
        self, cache: RuleCache, counter: UnhandledCounter, dyn: DynamicConfig, default_team: str
    ) -> None:
        self.cache = cache
        self.counter = counter
        self.dyn = dyn
        self.default_team = default_team

    def readiness(self) -> dict[str, str]:
        """Rules loaded, and whether the last reload worked."""
        try:
            snap = self.cache.current()
        except Exception as exc:
            return {"rules": f"error: no rules loaded: {type(exc).__name__}"}
        if self.cache.last_error:
            return {"rules": f"ok (degraded: {self.cache.last_error[:200]})"}
        return {"rules": "ok", "rules_version": f"ok {snap.version}"}

    def handle(self, events: Sequence[CloudEvent]) -> list[Outcome]:
        snap = self.cache.current()
        outcomes: list[Outcome | None] = [None] * len(events)
        unmatched: list[tuple[int, Event]] = []
        parents = [context_from(ce.get_attributes()) for ce in events]
        for i, ce in enumerate(events):
            with tracer.start_as_current_span("mutt.alert", context=parents[i]) as span:
                event = _event(ce)
                if isinstance(event, str):
                    outcomes[i] = Outcome.reject(event)
                    continue
                span.set_attribute("mutt.event_id", str(event.event_id))
                rule = snap.rules.match(event)
                if rule is None:
                    span.set_attribute("mutt.rule_id", "unhandled")
                    unmatched.append((i, event))
                else:
                    span.set_attribute("mutt.rule_id", rule.id)
                    RULES_MATCHED.labels(str(rule.id)).inc()
                    outcomes[i] = Outcome.ok(*self._handled(event, rule, snap))
        if unmatched:
            UNHANDLED_EVENTS.inc(len(unmatched))
            fired = self.counter.count(
                [e for _, e in unmatched],
                self.dyn.get("unhandled_threshold"),
                self.dyn.get("unhandled_window_seconds"),
                self.dyn.get("unhandled_max_fingerprints"),
            )
            for (i, _), hit in zip(unmatched, fired, strict=True):
                if hit is None:
                    outcomes[i] = Outcome.ok()
                    continue
                with tracer.start_as_current_span("mutt.alert.unhandled", context=parents[i]):
                    outcomes[i] = Outcome.ok(self._meta_alert(hit, snap))
        return [o if o is not None else Outcome.reject("not decided") for o in outcomes]

    def _handled(self, event: Event, rule: Rule, snap: Snapshot) -> list[CloudEvent]:
        environment, handling = snap.dev_hosts.decide(rule, event.hostname)
        DECISIONS.labels(handling.value, environment).inc()
        severity = event.severity if event.severity is not None else Severity.WARNING
        alert = None
        if handling.forwards:
            alert = Alert(
                alert_id=alert_id_for(event.event_id, f"rule:{rule.id}"),
                event_id=event.event_id,
                rule_id=rule.id,
                handling=handling,
                team=rule.team_assignment,
                environment=environment,
                severity=severity,
                severity_name=severity.label,
                summary=f"{event.hostname}: {event.message[:500]}",
                dedup_key=f"mutt:{rule.id}:{event.hostname}",
                raised_at=utcnow(),
                event=event,
            )
        record = {
            "event_id": str(event.event_id),
            "event_time": event.time.isoformat(),
            "received_at": event.received_at.isoformat(),
            "hostname": event.hostname,
            "matched_rule_id": rule.id,
            "handling_decision": handling.value,
            "environment": environment,
            "team": rule.team_assignment,
            "severity": int(event.severity) if event.severity is not None else None,
            "forwarded": alert is not None,
            "alert_id": str(alert.alert_id) if alert else None,
            "event": event.model_dump(mode="json"),
        }
        audit = CloudEvent(
            {"type": TYPE_AUDIT, "source": SOURCE, "id": f"audit:{event.event_id}"}, record
        )
        if alert is None:
            return [audit]
        raised = make_event(
            TYPE_ALERT, SOURCE, alert, id=str(alert.alert_id), **current_extensions()
        )
        return [raised, audit]

    def _meta_alert(self, hit: Fired, snap: Snapshot) -> CloudEvent:
        META_ALERTS.inc()
        event = hit.event
        team = snap.teams.get(event.hostname, self.default_team)
        hours = hit.window_seconds / 3600
        summary = (
            f"[MUTT] {hit.count} unhandled messages within {hours:g} h from '{event.hostname}'."
            f" Sample message: {event.message[:200]}"
        )
        alert = Alert(
            alert_id=alert_id_for(event.event_id, f"unhandled:{hit.fingerprint}"),
            event_id=event.event_id,
            rule_id="unhandled",
            handling=Handling.TICKET_ONLY,
            team=team,
            environment=snap.dev_hosts.environment(event.hostname),
            severity=Severity.WARNING,
            severity_name=Severity.WARNING.label,
            summary=summary,
            dedup_key=f"mutt:unhandled:{event.hostname}:{hit.fingerprint[:16]}",
            raised_at=utcnow(),
            event=event,
        )
        return make_event(TYPE_ALERT, SOURCE, alert, id=str(alert.alert_id), **current_extensions())


def _event(ce: CloudEvent) -> Event | str:
    """The accepted event in ``ce``, or why it is not one."""
    if ce["type"] != TYPE_ACCEPTED:
        return f"alert takes {TYPE_ACCEPTED}, not {ce['type']}"
    data: Any = ce.data
    try:
        return Event.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "data"
        return f"invalid event: {where}: {err['msg']}"
