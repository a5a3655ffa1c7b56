"""Moogsoft Cloud Events API sink (``POST /v1/integrations/events``).

Documented event fields sent: ``source`` (hostname), ``check`` (the rule
that fired, ``mutt.rule.<id>``), ``class`` and ``service`` (the team),
``description`` (the summary), ``severity`` (integer, see ``severity.py``),
``time`` (event time, UNIX seconds), ``dedupe_key`` (the alert's dedup key),
``manager`` ("MUTT") and ``tags`` (handling, team, environment, rule_id,
alert_id, event_id, syslog_severity, trap_oid, source_type).

v2.5 used the hostname as the signature, so Moogsoft merged every alert of
a host into one; the explicit ``dedupe_key`` fixes that. Moogsoft Cloud has
no ``external_id`` field, so the alert id travels as the ``alert_id`` tag.
Authentication is the ``apiKey`` header (Moogsoft Cloud) or ``Authorization:
Bearer`` (what v2.5 sent, for on-premises REST LAMs), by configuration.

A resolve (``alert.action == "resolve"``) is the same event with severity 0
(clear): Moogsoft closes the alert with the same ``dedupe_key``.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson

from functions.forward.sinks import severity
from functions.forward.sinks.base import SendResult
from functions.forward.sinks.fields import check_name, decision, summary
from functions.forward.sinks.http import HttpSession, post, reachable
from shared.models import Alert

DEFAULT_URL = "https://api.moogsoft.ai/v1/integrations/events"
AuthMode = Literal["apikey", "bearer"]


def payload(alert: Alert) -> dict[str, Any]:
    """The Moogsoft event for an alert."""
    event = alert.event
    tags = decision(alert)
    if event.trap_oid:
        tags["trap_oid"] = event.trap_oid
    if event.source_type:
        tags["source_type"] = event.source_type
    return {
        "source": event.hostname,
        "check": check_name(alert),
        "class": alert.team,
        "service": [alert.team],
        "description": summary(alert, limit=4096),
        "severity": (
            severity.MOOGSOFT_CLEAR
            if alert.action == "resolve"
            else severity.moogsoft(alert.severity)
        ),
        "time": int(event.time.timestamp()),
        "dedupe_key": alert.dedup_key,
        "manager": "MUTT",
        "tags": tags,
    }


class MoogsoftSink:
    """Sends each alert as one Moogsoft event."""

    def __init__(
        self,
        name: str,
        api_key: str,
        *,
        session: HttpSession,
        url: str = DEFAULT_URL,
        auth: AuthMode = "apikey",
        timeout: float = 10.0,
    ) -> None:
        self.name = name
        self.url = url
        self.timeout = timeout
        self._session = session
        self._api_key = api_key
        self._headers = (
            {"apiKey": api_key} if auth == "apikey" else {"Authorization": f"Bearer {api_key}"}
        )

    def send(self, alert: Alert) -> SendResult:
        body = orjson.dumps(payload(alert))
        return post(
            self._session,
            self.url,
            body,
            headers=self._headers,
            timeout=self.timeout,
            secrets=(self._api_key,),
        )

    def health(self) -> bool:
        return reachable(self._session, self.url, self.timeout)
