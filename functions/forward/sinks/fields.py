"""The alert fields every vendor payload is built from, bounded in size.

Vendors cap payloads (PagerDuty 512 KB, summaries 1024 characters) while an
event may carry 64 KB of message and a thousand varbinds, so the copies sent
as "details" are trimmed here, the same way for every sink. Handling, team
and environment always travel: v2.5 lost them, so Page and Ticket looked
identical downstream.
"""

from __future__ import annotations

from typing import Any

from shared.models import Alert

MESSAGE_CHARS = 4096
VARBINDS = 64
VARBIND_CHARS = 512


def truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, the cut marked with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def summary(alert: Alert, limit: int = 1024) -> str:
    """A one-line title that is never empty (vendors require one)."""
    text = " ".join(alert.summary.split()) or " ".join(alert.event.message.split())
    return truncate(text or f"MUTT alert on {alert.event.hostname}", limit)


def check_name(alert: Alert) -> str:
    """What fired: the rule, stable per rule (``mutt.rule.42``, ``mutt.rule.unhandled``)."""
    return f"mutt.rule.{alert.rule_id}"


def decision(alert: Alert) -> dict[str, str]:
    """The routing decision as flat strings (fits tags, labels and details alike)."""
    return {
        "handling": alert.handling.value,
        "team": alert.team,
        "environment": alert.environment,
        "rule_id": str(alert.rule_id),
        "alert_id": str(alert.alert_id),
        "event_id": str(alert.event_id),
        "syslog_severity": alert.severity_name,
    }


def event_details(alert: Alert) -> dict[str, Any]:
    """The originating event, trimmed: what an operator needs to see the raw input."""
    event = alert.event
    details: dict[str, Any] = {
        "hostname": event.hostname,
        "time": event.time.isoformat(),
        "message": truncate(event.message, MESSAGE_CHARS),
        "severity": event.severity_name,
        "source": event.source,
        "id": event.id,
    }
    optional = {
        "trap_oid": event.trap_oid,
        "source_type": event.source_type,
        "correlation_id": event.correlation_id,
    }
    details.update({k: v for k, v in optional.items() if v is not None})
    if event.varbinds:
        details["varbinds"] = [
            {"oid": vb.oid, "value": truncate(vb.value, VARBIND_CHARS)}
            for vb in event.varbinds[:VARBINDS]
        ]
        if len(event.varbinds) > VARBINDS:
            details["varbinds_omitted"] = len(event.varbinds) - VARBINDS
    return details
