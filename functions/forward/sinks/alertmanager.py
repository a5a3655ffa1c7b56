"""Prometheus Alertmanager sink (``POST <base>/api/v2/alerts``, API v2).

Sends a JSON array with one postable alert:

- ``labels`` (the alert's identity: Alertmanager fingerprints the label set,
  so only fields stable for one dedup key belong here): ``alertname`` (the
  rule, ``mutt.rule.<id>``), ``instance`` and ``host`` (hostname),
  ``severity`` (critical / error / warning / info, see ``severity.py``),
  ``team``, ``handling``, ``environment``, ``rule_id``, ``mutt_dedup_key``;
- ``annotations`` (per-occurrence data): ``summary``, ``description`` (the
  event message), ``alert_id``, ``event_id``, ``syslog_severity`` and, when
  known, ``trap_oid`` and ``source_type``;
- ``startsAt`` (event time), ``endsAt``, and ``generatorURL`` when configured.

Syslog lines and traps are edge-triggered: nothing will ever say the problem
stopped, so every alert carries an ``endsAt`` and resolves by itself after
``resolve_after``. It is counted from the later of the event time and now,
so an alert replayed from the DLQ hours later does not arrive already
resolved. A resolve (``alert.action == "resolve"``: a paired clear event,
or an Alertmanager alert's resolution) carries the trigger's labels with
``endsAt`` = now (never before ``startsAt``), which ends the alert in
Alertmanager at once.
``health()`` is ``GET /-/ready``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import orjson

from functions.forward.sinks import severity
from functions.forward.sinks.base import SendResult
from functions.forward.sinks.fields import MESSAGE_CHARS, check_name, summary, truncate
from functions.forward.sinks.http import FOLLOW_REDIRECTS, NETWORK_ERRORS, HttpSession, post
from shared.models import Alert, utcnow

DEFAULT_RESOLVE_AFTER = timedelta(hours=1)


def rfc3339(when: datetime) -> str:
    """UTC time as Alertmanager prints it (``2025-01-01T00:00:00.000Z``)."""
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def payload(
    alert: Alert,
    *,
    now: datetime,
    resolve_after: timedelta = DEFAULT_RESOLVE_AFTER,
    generator_url: str | None = None,
) -> list[dict[str, Any]]:
    """The ``postableAlerts`` array for one alert."""
    event = alert.event
    labels = {
        "alertname": check_name(alert),
        "instance": event.hostname,
        "host": event.hostname,
        "severity": severity.alertmanager(alert.severity),
        "team": alert.team,
        "handling": alert.handling.value,
        "environment": alert.environment,
        "rule_id": str(alert.rule_id),
        "mutt_dedup_key": alert.dedup_key,
    }
    annotations = {
        "summary": summary(alert),
        "description": truncate(event.message, MESSAGE_CHARS),
        "alert_id": str(alert.alert_id),
        "event_id": str(alert.event_id),
        "syslog_severity": alert.severity_name,
    }
    if event.trap_oid:
        annotations["trap_oid"] = event.trap_oid
    if event.source_type:
        annotations["source_type"] = event.source_type
    body: dict[str, Any] = {
        "labels": labels,
        "annotations": {k: v for k, v in annotations.items() if v},
        "startsAt": rfc3339(event.time),
        "endsAt": rfc3339(max(event.time, now) + resolve_after),
    }
    if alert.action == "resolve":
        body["endsAt"] = rfc3339(max(event.time, now))
    if generator_url:
        body["generatorURL"] = generator_url
    return [body]


class AlertmanagerSink:
    """Posts each alert to one Alertmanager (or one member of a cluster)."""

    def __init__(
        self,
        name: str,
        url: str,
        *,
        session: HttpSession,
        timeout: float = 10.0,
        resolve_after: timedelta = DEFAULT_RESOLVE_AFTER,
        generator_url: str | None = None,
        bearer_token: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.name = name
        self.base_url = url.rstrip("/")
        self.url = self.base_url + "/api/v2/alerts"
        self.timeout = timeout
        self.resolve_after = resolve_after
        self.generator_url = generator_url
        self._session = session
        self._clock = clock
        self._token = bearer_token
        self._headers = {"Authorization": f"Bearer {bearer_token}"} if bearer_token else {}

    def send(self, alert: Alert) -> SendResult:
        alerts = payload(
            alert,
            now=self._clock(),
            resolve_after=self.resolve_after,
            generator_url=self.generator_url,
        )
        return post(
            self._session,
            self.url,
            orjson.dumps(alerts),
            headers=self._headers,
            timeout=self.timeout,
            secrets=(self._token,) if self._token else (),
        )

    def health(self) -> bool:
        try:
            response = self._session.request(
                "GET",
                self.base_url + "/-/ready",
                headers=self._headers,
                timeout=self.timeout,
                retries=FOLLOW_REDIRECTS,
            )
        except NETWORK_ERRORS:
            return False
        return response.status == 200
