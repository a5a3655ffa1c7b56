"""alert: decide what each accepted event means and who must act.

Per batch: every event is matched against the cached rule set (first match
by priority, then rule id). A matched event is audited (one record per
event, written to PostgreSQL by the audit writer) and, unless its handling
for the host's environment is ``Ignore``, raises an alert carrying the
handling, the team and the event's own severity. Unmatched events are
counted per host and fingerprint; crossing the threshold raises one
meta-alert for the host's team.

Everything raised then passes through one integration point, the batch's
``Correlator`` (``functions/alert/correlation``): silences, down/up pairing
(clears become resolves), flapping, the dedup window and storm caps decide
what is delivered, in one Redis round trip per batch; the audit record says
what correlation did (``correlation``). Timers the correlator parked come
back through the input stream and are handled here too.

An event whose sender gave the X.733 severity "cleared" is a clear, never a
problem: it resolves the alarm its rule raised for the same key (the alarm
was kept open for it, being X.733 too) and raises nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cloudevents.http import CloudEvent
from pydantic import ValidationError

from functions.alert.cache import RuleCache, Snapshot
from functions.alert.correlation import TYPE_TIMER, Batch, Correlator, Result, parse_timer
from functions.alert.correlation.pairing import ClearMatch
from functions.alert.rules import Rule
from functions.alert.unhandled import Fired, UnhandledCounter
from functions.alert.unhandled_log import UnhandledLog
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
from shared.tracing import context_from, current_extensions, span

log = logging.getLogger(__name__)
SOURCE = "/mutt/alert"
META_HOST_PREFIX = "unhandled"


@dataclass
class _Work:
    """One event (or timer) whose outcome waits for the batch's correlation."""

    index: int
    extensions: dict[str, str]
    event: Event | None = None
    record: dict[str, Any] | None = None  # the audit record, completed after correlation
    own: int | None = None  # handle of the event's own alert in the batch
    notes: list[str] = field(default_factory=list)
    clears: list[int] = field(default_factory=list)  # handles of the clears it caused
    timer: int | None = None  # handle of a timer


class AlertHandler:
    """Accepted events in; alerts and audit records out."""

    stage = "alert"

    def __init__(
        self,
        cache: RuleCache,
        counter: UnhandledCounter,
        dyn: DynamicConfig,
        default_team: str,
        correlator: Correlator | None = None,
    ) -> None:
        self.cache = cache
        self.counter = counter
        self.dyn = dyn
        self.default_team = default_team
        # without one (embedders, tests of the rules alone) correlation is off
        self.correlator = correlator or Correlator(None, "", dyn, default_team)
        self._rules_by_id: tuple[int, dict[int, Rule]] = (-1, {})
        self._unhandled_log = UnhandledLog()

    def readiness(self) -> dict[str, str]:
        """Rules loaded, and whether the last reload worked."""
        try:
            snap = self.cache.current()
        except Exception as exc:
            return {"rules": f"error: no rules loaded: {type(exc).__name__}"}
        checks = {"rules": "ok", "rules_version": f"ok {snap.version}"}
        if self.cache.last_error:
            checks = {"rules": f"ok (degraded: {self.cache.last_error[:200]})"}
        if self.correlator.last_error:
            checks["correlation"] = f"ok (degraded: {self.correlator.last_error[:200]})"
        return checks

    def handle(self, events: Sequence[CloudEvent]) -> list[Outcome]:
        snap = self.cache.current()
        batch = self.correlator.begin()
        outcomes: list[Outcome | None] = [None] * len(events)
        work: list[_Work] = []
        unmatched: list[tuple[int, Event]] = []
        parents = [context_from(ce.get_attributes()) for ce in events]
        for i, ce in enumerate(events):
            if ce["type"] == TYPE_TIMER:
                try:
                    timer = parse_timer(ce)
                except ValueError as exc:
                    outcomes[i] = Outcome.reject(f"invalid correlation timer: {exc}")
                    continue
                with span("mutt.alert.timer", context=parents[i]):
                    work.append(_Work(i, current_extensions(), timer=batch.timer(timer)))
                continue
            with span("mutt.alert", context=parents[i]) as current:
                event = _event(ce)
                if isinstance(event, str):
                    outcomes[i] = Outcome.reject(event)
                    continue
                if current.is_recording():  # str(UUID) is ~2% of the worker: not for a no-op
                    current.set_attribute("mutt.event_id", str(event.event_id))
                rule = snap.rules.match(event)
                clears = batch.clears(event)
                if event.perceived_severity == "cleared":
                    item = _Work(i, current_extensions(), event=event)
                    if rule is not None:
                        current.set_attribute("mutt.rule_id", rule.id)
                        RULES_MATCHED.labels(str(rule.id)).inc()
                    self._alarm_cleared(item, event, rule, snap, batch, clears)
                    work.append(item)
                    continue
                if rule is None and not clears:
                    current.set_attribute("mutt.rule_id", "unhandled")
                    unmatched.append((i, event))
                    continue
                item = _Work(i, current_extensions(), event=event)
                if rule is not None:
                    current.set_attribute("mutt.rule_id", rule.id)
                    RULES_MATCHED.labels(str(rule.id)).inc()
                    self._handled(item, event, rule, snap, batch, clears)
                else:
                    item.record = self._clear_record(event, clears[0], snap)
                item.clears = [batch.clear(c, event) for c in clears]
                work.append(item)
        if unmatched:
            self._unmatched(unmatched, parents, outcomes, snap, batch)
        results = batch.run()
        for item in work:
            outcomes[item.index] = self._finish(item, results, batch.now_ms)
        return [o if o is not None else Outcome.reject("not decided") for o in outcomes]

    def _handled(
        self,
        item: _Work,
        event: Event,
        rule: Rule,
        snap: Snapshot,
        batch: Batch,
        clears: list[ClearMatch],
    ) -> None:
        """The rule's decision: audit record and, unless Ignore or silenced, an alert."""
        environment, handling = snap.dev_hosts.decide(rule, event.hostname)
        DECISIONS.labels(handling.value, environment).inc()
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "rule %s matched: %s in %s",
                rule.id,
                handling.value,
                environment,
                extra={"event_id": str(event.event_id), "rule_id": rule.id},
            )
        if any(c.rule_id is None or c.rule_id == rule.id for c in clears):
            # the paired rule matched its own clear message, or a rule matched an
            # Alertmanager resolution: this is the clear, not a problem
            item.record = _record(event, rule.id, "Clear", environment, rule.team_assignment)
            return
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
                dedup_key=batch.dedup_key(rule, event),
                raised_at=utcnow(),
                event=event,
            )
            silence = batch.silenced(alert)
            if silence is not None:
                item.notes.append(f"silenced:{silence.id}")
            else:
                # an X.733 alarm (a "cleared" event never gets here): kept open for its clear
                item.own = batch.trigger(alert, clearable=event.perceived_severity is not None)
        item.record = _record(
            event, rule.id, handling.value, environment, rule.team_assignment, alert
        )

    def _alarm_cleared(
        self,
        item: _Work,
        event: Event,
        rule: Rule | None,
        snap: Snapshot,
        batch: Batch,
        clears: list[ClearMatch],
    ) -> None:
        """An X.733 "cleared" event: it ends the alarm it names and never raises one.

        The alarm is the one its rule raised for the same key (see
        ``Batch.alarm_clear``); pairs whose clear pattern the message matches
        are cleared too. With no rule and no pair the alarm cannot be named:
        the clear is audited (``clear:no-rule``) but never counted as
        unhandled, so it cannot raise a meta-alert either.
        """
        if rule is not None:
            own = batch.alarm_clear(rule, event)
            clears = [own] + [c for c in clears if c.key != own.key]
            environment, _ = snap.dev_hosts.decide(rule, event.hostname)
            item.record = _record(event, rule.id, "Clear", environment, rule.team_assignment)
        elif clears:
            item.record = self._clear_record(event, clears[0], snap)
        else:
            team = snap.teams.get(event.hostname, self.default_team)
            environment = snap.dev_hosts.environment(event.hostname)
            item.record = _record(event, None, "Clear", environment, team)
            item.notes.append("clear:no-rule")
        item.clears = [batch.clear(c, event) for c in clears]

    def _clear_record(self, event: Event, clear: ClearMatch, snap: Snapshot) -> dict[str, Any]:
        """The audit record of a clear no rule matched (rule and team: the pair's, or for an
        Alertmanager resolution the host's until correlation names the alert it resolved)."""
        environment = snap.dev_hosts.environment(event.hostname)
        if clear.rule_id is None:
            team = snap.teams.get(event.hostname, self.default_team)
            return _record(event, None, "Clear", environment, team)
        version, by_id = self._rules_by_id
        if version != snap.version or not by_id:
            by_id = {r.id: r for r in snap.rules.rules}
            self._rules_by_id = (snap.version, by_id)
        rule = by_id.get(clear.rule_id)
        team = rule.team_assignment if rule is not None else self.default_team
        return _record(event, clear.rule_id, "Clear", environment, team)

    def _finish(self, item: _Work, results: list[Result], now_ms: int) -> Outcome:
        """Replies, parked timers and the completed audit record of one event or timer."""
        own = results[item.own] if item.own is not None else None
        clears = [results[h] for h in item.clears]
        timer = [results[item.timer]] if item.timer is not None else []
        alerts: list[Alert] = []
        later: list[tuple[CloudEvent, float]] = []
        for result in ([own] if own is not None else []) + clears + timer:
            alerts += result.alerts
            later += [(t.event(item.extensions), t.delay(now_ms)) for t in result.timers]
            if result.note:
                item.notes.append(result.note)
        replies = [
            make_event(TYPE_ALERT, SOURCE, a, id=str(a.alert_id), **item.extensions) for a in alerts
        ]
        record = item.record
        if record is not None and item.event is not None:
            if own is not None:
                record["forwarded"] = own.delivered
            elif record["handling_decision"] == "Clear":
                resolved = [r.alerts[0] for r in clears if r.delivered and r.alerts]
                record["forwarded"] = bool(resolved)
                record["alert_id"] = str(resolved[0].alert_id) if resolved else None
                if resolved and record["matched_rule_id"] is None:  # an Alertmanager resolution
                    opened = resolved[0]  # its rule and team are those of the alert it resolved
                    if isinstance(opened.rule_id, int):
                        record["matched_rule_id"] = opened.rule_id
                    record["team"] = opened.team
            record["correlation"] = "; ".join(item.notes) or None
            replies.append(_audit_event(item.event, record))
        return Outcome.ok(*replies, later=later)

    def _unmatched(
        self,
        unmatched: list[tuple[int, Event]],
        parents: list[Any],
        outcomes: list[Outcome | None],
        snap: Snapshot,
        batch: Batch,
    ) -> None:
        """Count unmatched events; raise meta-alerts (silences apply); audit when asked to."""
        UNHANDLED_EVENTS.inc(len(unmatched))
        for _, event in unmatched:
            self._unhandled_log.note(event)
        fired = self.counter.count(
            [e for _, e in unmatched],
            self.dyn.get("unhandled_threshold"),
            self.dyn.get("unhandled_window_seconds"),
            self.dyn.get("unhandled_max_fingerprints"),
        )
        audit = self.dyn.get("audit_unhandled") == 1
        for (i, event), hit in zip(unmatched, fired, strict=True):
            replies: list[CloudEvent] = []
            note = None
            meta = None
            if hit is not None:
                with span("mutt.alert.unhandled", context=parents[i]):
                    meta = self._meta_alert(hit, snap)
                    silence = batch.silenced(meta)
                    if silence is None:
                        replies.append(
                            make_event(
                                TYPE_ALERT,
                                SOURCE,
                                meta,
                                id=str(meta.alert_id),
                                **current_extensions(),
                            )
                        )
                    else:
                        note = f"silenced:{silence.id}"
            if audit:
                team = snap.teams.get(event.hostname, self.default_team)
                environment = snap.dev_hosts.environment(event.hostname)
                record = _record(event, None, "Unhandled", environment, team, meta)
                record["forwarded"] = bool(replies)
                record["correlation"] = note
                replies.append(_audit_event(event, record))
            outcomes[i] = Outcome.ok(*replies)

    def _meta_alert(self, hit: Fired, snap: Snapshot) -> Alert:
        META_ALERTS.inc()
        event = hit.event
        team = snap.teams.get(event.hostname, self.default_team)
        hours = hit.window_seconds / 3600
        summary = (
            f"[MUTT] {hit.count} unhandled messages within {hours:g} h from '{event.hostname}'."
            f" Sample message: {event.message[:200]}"
        )
        return Alert(
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


def _record(
    event: Event,
    rule_id: int | None,
    decision: str,
    environment: str,
    team: str | None,
    alert: Alert | None = None,
) -> dict[str, Any]:
    """An audit record; ``forwarded`` and ``correlation`` are filled in once correlation ran."""
    return {
        "event_id": str(event.event_id),
        "event_time": event.time.isoformat(),
        "received_at": event.received_at.isoformat(),
        "hostname": event.hostname,
        "matched_rule_id": rule_id,
        "handling_decision": decision,
        "environment": environment,
        "team": team,
        "severity": int(event.severity) if event.severity is not None else None,
        "forwarded": False,
        "alert_id": str(alert.alert_id) if alert else None,
        "event": event.model_dump(mode="json"),
        "correlation": None,
    }


def _audit_event(event: Event, record: dict[str, Any]) -> CloudEvent:
    return CloudEvent(
        {"type": TYPE_AUDIT, "source": SOURCE, "id": f"audit:{event.event_id}"}, record
    )


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
