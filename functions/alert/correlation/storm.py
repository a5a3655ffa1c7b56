"""Storm control: above a per-host or a global number of alerts per minute, summarize.

Alerts are counted per host and per epoch minute, and in all per minute
(``storm.lua``); alerts a host cap already suppressed do not count toward
the global cap, so one noisy host never silences the others. Above a cap
the alert is audited (``storm:host`` / ``storm:global``) and not delivered;
the first one parks a timer for the end of the minute, which delivers one
storm alert per window with the number suppressed and the worst severity.
Resolves, flapping and storm alerts themselves are never capped.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from functions.alert.correlation.dedup_keys import bounded
from shared.models import Alert, Severity

WINDOW_MS = 60_000
GRACE_MS = 2_000  # instances' clocks differ a little: summarize a bit after the minute


def bucket_of(now_ms: int) -> int:
    """The epoch minute of a time."""
    return now_ms // WINDOW_MS


def summary_due(bucket: int) -> int:
    """When the summary of a window is due (ms)."""
    return (bucket + 1) * WINDOW_MS + GRACE_MS


def scope_of(hostname: str | None) -> str:
    return f"host:{hostname}" if hostname else "global"


def storm_alert(
    sample: Alert,
    scope: str,
    bucket: int,
    count: int,
    worst: Severity | None,
    cap: int,
    team: str,
    now: datetime,
) -> Alert:
    """The one alert summarizing a window's suppressed alerts."""
    start = datetime.fromtimestamp(bucket * WINDOW_MS / 1000, UTC)
    where = f"on {scope[5:]}" if scope.startswith("host:") else "across all hosts"
    severity = worst if worst is not None else sample.severity
    summary = (
        f"[MUTT] alert storm {where}: {count} alerts suppressed in the minute from"
        f" {start:%Y-%m-%d %H:%M} UTC (cap {cap}/min); worst severity {severity.label}."
        f" First: {sample.summary[:300]}"
    )
    return sample.model_copy(
        update={
            "alert_id": uuid.uuid5(sample.alert_id, f"storm:{scope}:{bucket}"),
            "rule_id": "storm",
            "team": team,
            "severity": severity,
            "severity_name": severity.label,
            "summary": summary,
            "dedup_key": bounded(f"mutt:storm:{scope}"),
            "raised_at": now,
            "action": "trigger",
        }
    )
