"""Any other CloudEvent → ``Event``: MUTT is a CloudEvents sink, not a MUTT-only one.

Knative sources (ApiServerSource, PingSource, a partner's webhook bridge)
send their own types. Refusing them would make ingest a broken sink; routing
them blindly would invent facts. So the mapping is explicit and minimal:
the hostname comes from the data (``hostname``/``host``) or else the
``source`` URI's host (or the source itself); the message from
``message``/``msg``/``summary``, or the text data, or the data as compact
JSON; a ``severity`` in the data is used when ingest can read it (a syslog
or X.733 severity). The CloudEvent's type, subject and extensions are kept under
``attributes.cloudevent``. Rules can then match such events like any other;
unmatched ones only feed the unhandled counter.
"""

from __future__ import annotations

import json
from datetime import datetime
from urllib.parse import urlsplit

import orjson

from functions.ingest.errors import InputError
from functions.ingest.fields import Kind, build_event
from functions.ingest.limits import MAX_MESSAGE_BYTES
from functions.ingest.severity import read_severity
from shared.models import Event

_CORE = frozenset({"specversion", "id", "source", "type", "time", "datacontenttype", "dataschema"})
_MESSAGE_KEYS = ("message", "msg", "summary", "description", "text")


def _host_from_source(source: str) -> str:
    parts = urlsplit(source)
    if parts.hostname:
        return parts.hostname
    text = source.strip("/").split("/")[0] if source.strip("/") else "cloudevents"
    cleaned = "".join(c if c.isalnum() or c in "-._" else "-" for c in text)[:255]
    return cleaned.strip("-.") or "cloudevents"


def _message(data: object) -> str:
    if isinstance(data, dict):
        for key in _MESSAGE_KEYS:
            value = data.get(key)
            if isinstance(value, str) and value.strip():
                return value
    if isinstance(data, str):
        text = data
    elif isinstance(data, bytes | bytearray):
        text = bytes(data).decode("utf-8", errors="replace")
    elif data is None:
        text = ""
    else:
        try:
            text = orjson.dumps(data).decode()
        except orjson.JSONEncodeError:  # integers beyond 64 bits (the SDK parses with json)
            text = json.dumps(data, ensure_ascii=False, default=str)
    return text[: MAX_MESSAGE_BYTES // 4] or "(no data)"


def parse_foreign_cloudevent(
    attributes: dict[str, object],
    data: object,
    *,
    received_at: datetime | None = None,
    correlation_id: str | None = None,
) -> Event:
    """Map a CloudEvent of a non-MUTT type; ``InputError`` only for unusable identity."""
    source = attributes.get("source")
    ce_id = attributes.get("id")
    if not isinstance(source, str) or not isinstance(ce_id, str):
        raise InputError("source", "CloudEvent source and id must be strings")
    obj: dict[str, object] = {}
    if isinstance(data, dict):
        host = data.get("hostname") or data.get("host")
        if isinstance(host, str) and host.strip():
            obj["hostname"] = host
        severity = data.get("severity")
        if severity is not None and not read_severity(severity).unknown:  # else: stays in data
            obj["severity"] = severity
    obj.setdefault("hostname", _host_from_source(source))
    obj["message"] = _message(data)
    envelope = {k: v for k, v in attributes.items() if k not in _CORE and v is not None}
    envelope["type"] = attributes.get("type")
    obj["cloudevent"] = envelope
    if isinstance(data, dict):
        obj["data"] = data
    return build_event(
        obj,
        kind=Kind.GENERIC,
        source=source,
        event_id=ce_id,
        received_at=received_at,
        correlation_id=correlation_id,
        default_time=attributes.get("time"),
    )
