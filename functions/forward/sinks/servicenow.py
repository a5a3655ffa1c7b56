"""ServiceNow Event Management sink (``POST <instance>/api/global/em/jsonv2``).

Documented event fields sent, as one record of ``{"records": [...]}``:
``source`` ("MUTT"), ``event_class`` (configurable, the MUTT instance),
``node`` (hostname, which binds the event to its CMDB CI), ``resource`` (the
event's source type, when known), ``type`` (the rule, ``mutt.rule.<id>``),
``severity`` ("1" critical .. "4" warning, see ``severity.py``),
``description`` (summary), ``message_key`` (the alert's dedup key, so
ServiceNow de-duplicates like every other sink), ``time_of_event`` (GMT,
``yyyy-MM-dd HH:mm:ss``) and ``additional_info``: a JSON *string*, as
documented, with the decision (handling, team, environment, rule_id,
alert_id, event_id), the original syslog severity and the trimmed event.
Authentication is HTTP basic (an ``evt_mgmt_integration`` user).

A resolve (``alert.action == "resolve"``) is the same record with severity
"0" (clear) and ``resolution_state`` "Closing": ServiceNow closes the alert
bound to the same ``message_key``.
"""

from __future__ import annotations

from typing import Any

import orjson

from functions.forward.sinks import severity
from functions.forward.sinks.base import SendResult
from functions.forward.sinks.fields import check_name, decision, event_details, summary
from functions.forward.sinks.http import HttpSession, post, reachable
from shared.models import Alert

PATH = "/api/global/em/jsonv2"


def payload(alert: Alert, *, source: str = "MUTT", event_class: str = "MUTT") -> dict[str, Any]:
    """The ``records`` body carrying one event."""
    event = alert.event
    info = {**decision(alert), "event": event_details(alert)}
    record: dict[str, Any] = {
        "source": source,
        "event_class": event_class,
        "node": event.hostname,
        "type": check_name(alert),
        "severity": severity.servicenow(alert.severity),
        "description": summary(alert, limit=4000),
        "message_key": alert.dedup_key,
        "time_of_event": event.time.strftime("%Y-%m-%d %H:%M:%S"),
        "additional_info": orjson.dumps(info).decode(),
    }
    if event.source_type:
        record["resource"] = event.source_type
    if alert.action == "resolve":
        record["severity"] = severity.SERVICENOW_CLEAR
        record["resolution_state"] = "Closing"
    return {"records": [record]}


class ServiceNowSink:
    """Inserts one ``em_event`` record per alert."""

    def __init__(
        self,
        name: str,
        instance_url: str,
        username: str,
        password: str,
        *,
        session: HttpSession,
        timeout: float = 10.0,
        source: str = "MUTT",
        event_class: str = "MUTT",
    ) -> None:
        self.name = name
        self.instance_url = instance_url.rstrip("/")
        self.url = self.instance_url + PATH
        self.timeout = timeout
        self.source = source
        self.event_class = event_class
        self._session = session
        self._auth = (username, password)

    def send(self, alert: Alert) -> SendResult:
        body = orjson.dumps(payload(alert, source=self.source, event_class=self.event_class))
        return post(
            self._session,
            self.url,
            body,
            headers={},
            timeout=self.timeout,
            auth=self._auth,
            secrets=(self._auth[1],),
        )

    def health(self) -> bool:
        return reachable(self._session, self.instance_url + "/", self.timeout)
