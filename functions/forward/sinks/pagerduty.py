"""PagerDuty Events API v2 sink (``POST https://events.pagerduty.com/v2/enqueue``).

Documented fields sent: ``routing_key``, ``event_action`` ("trigger"),
``dedup_key`` (the alert's dedup key, at most 255 characters by the model),
``client`` ("MUTT"), and ``payload``: ``summary`` (at most 1024 characters),
``source`` (hostname), ``severity`` (critical / error / warning / info, see
``severity.py``), ``timestamp`` (event time, ISO 8601), ``component`` (the
event's source type, when known), ``group`` (team), ``class`` (the rule,
``mutt.rule.<id>``) and ``custom_details`` (handling, environment, rule_id,
alert_id, event_id, team, syslog_severity, and the trimmed event).

A resolve (``alert.action == "resolve"``) is ``event_action`` "resolve" with
only ``routing_key`` and ``dedup_key``, as documented: PagerDuty resolves the
incident opened by the trigger with the same ``dedup_key``.

PagerDuty answers 202 when the event is queued, 400 for an invalid event
(permanent), 429 and 5xx when it wants a retry: the shared classification.
"""

from __future__ import annotations

from typing import Any

import orjson

from functions.forward.sinks import severity
from functions.forward.sinks.base import SendResult
from functions.forward.sinks.fields import check_name, decision, event_details, summary
from functions.forward.sinks.http import HttpSession, post, reachable
from shared.models import Alert

DEFAULT_URL = "https://events.pagerduty.com/v2/enqueue"


def payload(alert: Alert, routing_key: str) -> dict[str, Any]:
    """The trigger (or resolve) event for an alert."""
    if alert.action == "resolve":
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": alert.dedup_key}
    details: dict[str, Any] = {**decision(alert), "event": event_details(alert)}
    body: dict[str, Any] = {
        "summary": summary(alert, limit=1024),
        "source": alert.event.hostname,
        "severity": severity.pagerduty(alert.severity),
        "timestamp": alert.event.time.isoformat(),
        "group": alert.team,
        "class": check_name(alert),
        "custom_details": details,
    }
    if alert.event.source_type:
        body["component"] = alert.event.source_type
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": alert.dedup_key,
        "client": "MUTT",
        "payload": body,
    }


class PagerDutySink:
    """Triggers one PagerDuty alert per MUTT alert, de-duplicated by ``dedup_key``."""

    def __init__(
        self,
        name: str,
        routing_key: str,
        *,
        session: HttpSession,
        url: str = DEFAULT_URL,
        timeout: float = 10.0,
    ) -> None:
        self.name = name
        self.url = url
        self.timeout = timeout
        self._session = session
        self._routing_key = routing_key

    def send(self, alert: Alert) -> SendResult:
        body = orjson.dumps(payload(alert, self._routing_key))
        return post(
            self._session,
            self.url,
            body,
            headers={},
            timeout=self.timeout,
            secrets=(self._routing_key,),
        )

    def health(self) -> bool:
        return reachable(self._session, self.url, self.timeout)
