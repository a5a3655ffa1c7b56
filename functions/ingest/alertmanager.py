"""The Prometheus Alertmanager webhook (version "4") → one ``Event`` per alert.

Identity: ``source`` is the Alertmanager's ``externalURL`` (else
``/alertmanager``) and ``id`` is ``fingerprint:status:startsAt``, so a
re-notification of the same alert (``repeat_interval``, a group update) is
deduplicated, while its resolution and a later re-firing are new events.
The alert's labels, annotations, status and fingerprint are kept in
``attributes``: the alert stage keys the alert it raises by the fingerprint
and treats ``status: resolved`` as the resolution of that alert, never as a
new problem (``functions/alert/correlation/alertmanager.py``).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from urllib.parse import urlsplit

import orjson

from functions.ingest.errors import InputError, field_path, json_type, preview
from functions.ingest.fields import Kind, build_event, received_at_or_now
from functions.ingest.limits import (
    DEFAULT_MAX_BATCH,
    MAX_ATTRIBUTE_KEY_CHARS,
    MAX_ATTRIBUTES_BYTES,
    MAX_SOURCE_CHARS,
)
from functions.ingest.normalize import check_string, check_text, normalize_hostname
from functions.ingest.timeparse import parse_time
from shared.models import SEVERITY_ALIASES, Event, Severity

DEFAULT_SOURCE = "/alertmanager"
DEFAULT_HOSTNAME = "alertmanager"
SOURCE_TYPE = "alertmanager"
_STATUSES = frozenset({"firing", "resolved"})
_HOST_LABELS = ("host", "hostname", "instance")  # explicit names before exporter targets
_MESSAGE_SOURCES = (
    ("annotations", "summary"),
    ("annotations", "description"),
    ("labels", "alertname"),
)
_GO_ZERO_TIME = "0001-01-01T00:00:00"  # what Alertmanager sends for "no endsAt"
_MAX_FINGERPRINT_CHARS = 128
# Alert fields kept verbatim in attributes (when strings), under snake_case names.
_RAW_KEYS = (("starts_at", "startsAt"), ("ends_at", "endsAt"), ("generator_url", "generatorURL"))

# labels.severity as Prometheus rule authors write it → syslog severity.
ALERT_SEVERITIES: dict[str, Severity] = {
    **SEVERITY_ALIASES,
    **{str(level.value): level for level in Severity},
    "page": Severity.ALERT,
    "p1": Severity.ALERT,
    "disaster": Severity.EMERGENCY,
    "fatal": Severity.CRITICAL,
    "high": Severity.CRITICAL,
    "major": Severity.CRITICAL,
    "p2": Severity.CRITICAL,
    "p3": Severity.ERROR,
    "medium": Severity.WARNING,
    "minor": Severity.WARNING,
    "p4": Severity.WARNING,
    "low": Severity.NOTICE,
    "p5": Severity.NOTICE,
    "none": Severity.INFO,
}
DEFAULT_SEVERITY = Severity.WARNING  # a missing or unknown label still alerts


def parse_alertmanager(
    body: object,
    *,
    received_at: datetime | None = None,
    correlation_id: str | None = None,
    max_alerts: int = DEFAULT_MAX_BATCH,
) -> list[Event]:
    """Every alert of a notification, or the first ``InputError`` (index = alert position)."""
    if not isinstance(body, dict):
        raise InputError("body", f"must be an Alertmanager webhook object, not {json_type(body)}")
    version = body.get("version")
    if version is not None and version != "4":
        raise InputError("version", f'unsupported webhook version {preview(version)}: expected "4"')
    alerts = body.get("alerts")
    if not isinstance(alerts, list):
        raise InputError("alerts", f"is required: an array of alerts, not {json_type(alerts)}")
    if len(alerts) > max_alerts:
        raise InputError(
            "alerts", f"has {len(alerts)} alerts, the limit per request is {max_alerts}"
        )
    source = check_text(body.get("externalURL"), "externalURL", MAX_SOURCE_CHARS) or DEFAULT_SOURCE
    context = {
        key: value
        for key, value in (("receiver", body.get("receiver")), ("group_key", body.get("groupKey")))
        if isinstance(value, str)
    }
    received = received_at_or_now(received_at)
    default_status = body.get("status")
    events = []
    for index, alert in enumerate(alerts):
        try:
            events.append(
                _alert_event(alert, source, default_status, context, received, correlation_id)
            )
        except InputError as exc:
            exc.index = index
            raise
    return events


def _alert_event(
    alert: object,
    source: str,
    default_status: object,
    context: dict[str, str],
    received: datetime,
    correlation_id: str | None,
) -> Event:
    if not isinstance(alert, dict):
        raise InputError("alerts", f"each alert must be an object, not {json_type(alert)}")
    status = alert.get("status", default_status)
    if not isinstance(status, str) or status not in _STATUSES:
        raise InputError("status", f"must be 'firing' or 'resolved', not {preview(status)}")
    labels = _string_map(alert.get("labels"), "labels")
    annotations = _string_map(alert.get("annotations"), "annotations")
    fingerprint = check_text(alert.get("fingerprint"), "fingerprint", _MAX_FINGERPRINT_CHARS)
    if fingerprint is None:  # Alertmanager always sends one; other senders may not
        encoded = orjson.dumps(labels, option=orjson.OPT_SORT_KEYS)
        fingerprint = hashlib.sha256(encoded).hexdigest()[:16]
    starts = _am_time(alert.get("startsAt"), received)
    ends = _am_time(alert.get("endsAt"), received)
    starts_key = starts.isoformat() if starts is not None else ""
    fields: dict[str, object] = {
        "hostname": _hostname(labels),
        "timestamp": starts if status == "firing" else ends,
        "message": _message(labels, annotations, fingerprint),
        "syslog_severity": _severity(labels.get("severity")),
        "source_type": SOURCE_TYPE,
        "status": status,
        "fingerprint": fingerprint,
        "labels": labels,
        "annotations": annotations,
        **{key: alert[name] for key, name in _RAW_KEYS if isinstance(alert.get(name), str)},
        **context,
    }
    return build_event(
        fields,
        kind=Kind.GENERIC,
        source=source,
        event_id=f"{fingerprint}:{status}:{starts_key}",
        received_at=received,
        correlation_id=correlation_id,
    )


def _string_map(value: object, field: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(field, f"must be an object of strings, not {json_type(value)}")
    for key, item in value.items():
        check_string(key, f"{field} key", MAX_ATTRIBUTE_KEY_CHARS)
        if not isinstance(item, str):
            raise InputError(field_path(field, key), f"must be a string, not {json_type(item)}")
        check_string(item, field_path(field, key), MAX_ATTRIBUTES_BYTES)
    return value  # every key and value checked above: safe to encode


def _am_time(value: object, received: datetime) -> datetime | None:
    if isinstance(value, str) and value.startswith(_GO_ZERO_TIME):
        return None
    return parse_time(value, received)


def _hostname(labels: dict[str, str]) -> str:
    """The first label that yields a valid hostname; exporter ports and URLs stripped."""
    for name in _HOST_LABELS:
        value = labels.get(name)
        if value:
            try:
                return normalize_hostname(_strip_port(value), f"labels.{name}")
            except InputError:
                continue
    return DEFAULT_HOSTNAME


def _strip_port(target: str) -> str:
    """``host:9100``, ``[::1]:9100``, ``http://host:9115/probe`` → the host part."""
    text = target.strip()
    if "://" in text:
        try:
            return urlsplit(text).hostname or ""
        except ValueError:  # e.g. an unbalanced IPv6 bracket
            return ""
    if text.startswith("["):
        end = text.find("]")
        return text[1:end] if end > 0 else text
    host, colon, port = text.rpartition(":")
    if colon and port.isascii() and port.isdigit() and ":" not in host:
        return host
    return text


def _message(labels: dict[str, str], annotations: dict[str, str], fingerprint: str) -> str:
    maps = {"labels": labels, "annotations": annotations}
    for map_name, key in _MESSAGE_SOURCES:
        text = maps[map_name].get(key)
        if text and not text.isspace():
            return text
    return f"Alertmanager alert {fingerprint}"


def _severity(label: str | None) -> Severity:
    if label is None:
        return DEFAULT_SEVERITY
    return ALERT_SEVERITIES.get(label.strip().lower(), DEFAULT_SEVERITY)
