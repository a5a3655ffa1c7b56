"""ingest over HTTP: CloudEvents in, accepted events durably in ``mutt:events``.

A request is answered 2xx only after its events are in the stream.
Foundation version: binary and structured CloudEvents at ``POST /``; the
full contract (legacy webhook, batches, Alertmanager, auth, admission)
arrives with the "ingest" issue.
"""

from __future__ import annotations

import logging
from datetime import datetime

import flask
import redis
from cloudevents.exceptions import GenericException
from cloudevents.http import CloudEvent, from_http

from shared.broker.streams import publish
from shared.context import get_context
from shared.envelope import FIELD, encode, make_event
from shared.http_function import json_response, serve_ops
from shared.models import (
    INBOUND_TYPES,
    TYPE_ACCEPTED,
    Event,
    event_id_for,
    parse_severity,
    utcnow,
)

log = logging.getLogger(__name__)
SOURCE = "/mutt/ingest"


class InputError(ValueError):
    """A request the sender must fix (answered 400, never retried)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def _to_event(ce: CloudEvent, received_at: datetime) -> Event:
    if ce["type"] not in INBOUND_TYPES:
        raise InputError(
            "type", f"unsupported event type {ce['type']!r}; use one of {sorted(INBOUND_TYPES)}"
        )
    data = ce.data
    if not isinstance(data, dict):
        raise InputError("data", "must be a JSON object")
    hostname = str(data.get("hostname") or "").strip().lower()
    if not hostname:
        raise InputError("data.hostname", "is required")
    message = data.get("message")
    if not isinstance(message, str):
        raise InputError("data.message", "must be a string")
    severity = None
    raw_sev = data.get("syslog_severity", data.get("severity"))
    if raw_sev is not None:
        try:
            severity = parse_severity(raw_sev)
        except ValueError as exc:
            raise InputError("data.syslog_severity", str(exc)) from None
    oid = data.get("trap_oid")
    return Event(
        event_id=event_id_for(ce["source"], ce["id"]),
        source=ce["source"],
        id=ce["id"],
        hostname=hostname,
        time=received_at,
        time_estimated=True,
        message=message,
        severity=severity,
        severity_name=severity.label if severity is not None else None,
        trap_oid=str(oid).lstrip(".") if oid else None,
        source_type=data.get("source_type"),
        received_at=received_at,
    )


def handle(request: flask.Request) -> flask.Response:
    """The whole HTTP surface of ingest."""
    ops = serve_ops(request)
    if ops is not None:
        return ops
    if request.method != "POST" or request.path != "/":
        return json_response({"error": f"no route for {request.method} {request.path}"}, 404)
    try:
        ce = from_http(dict(request.headers), request.get_data())
    except GenericException as exc:
        return json_response({"error": f"not a CloudEvent: {exc}"}, 400)
    try:
        event = _to_event(ce, utcnow())
    except InputError as exc:
        return json_response({"error": exc.problem, "field": exc.field}, 400)
    except ValueError as exc:
        return json_response({"error": str(exc)}, 400)
    ctx = get_context()
    accepted = make_event(TYPE_ACCEPTED, SOURCE, event, id=str(event.event_id))
    try:
        publish(ctx.redis, ctx.keys.events, [{FIELD: encode(accepted)}])
    except redis.RedisError as exc:
        log.error("publish failed: %s", exc)
        return json_response(
            {"error": "event stream unavailable, retry later"}, 503, {"Retry-After": "1"}
        )
    return json_response({"accepted": 1, "event_ids": [str(event.event_id)]}, 202)
