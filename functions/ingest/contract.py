"""Ingest's public HTTP contract as pydantic models, and the OpenAPI 3.1 document built from them.

The parsers enforce the rules (with better messages than a schema could
give); these models publish the same shapes so senders can generate
clients, and so schemathesis can hold the live server to the document.
``docs/openapi.json`` is this document, committed (``mutt openapi``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.models import Event, Varbind

API_VERSION = "3.0"
DEPRECATED_SUNSET = "Wed, 31 Dec 2027 23:59:59 GMT"
DEPRECATED_ROUTES = frozenset({"/ingest", "/api/v1/ingest", "/alertmanager"})
Severity = int | str
SEVERITY_TEXT = (
    "0-7, a syslog name (err, warning...) or an ITU X.733 severity (critical, major, minor,"
    " warning, indeterminate, cleared), any case; X.733 is mapped to syslog (major = error,"
    " minor = warning; cleared resolves the alarm it names, docs/sources.md). An unknown"
    " value never refuses the event: it is kept in attributes and the default applies"
)
HOSTNAME_FOR_TRAPS = (
    "trimmed and lower-cased by ingest; a trap without one takes its sysName.0 varbind"
    " (1.3.6.1.2.1.1.5.0), else agent_address, else source_ip"
)
# The three varbind forms ingest reads (functions/ingest/varbinds.py).
VarbindScalar = str | int | float | None
Varbinds = list[Varbind | tuple[str, VarbindScalar]] | dict[str, VarbindScalar]
VARBINDS_TEXT = (
    'objects {"oid", "type"?, "value"}, [oid, value] pairs, or one object {oid: value};'
    " at most 1024"
)


class SyslogData(BaseModel):
    """The data of ``io.mutt.syslog.v1`` (and of ``io.mutt.event.v1``)."""

    model_config = ConfigDict(extra="allow")

    hostname: str = Field(max_length=255, description="trimmed and lower-cased by ingest")
    message: str = Field(max_length=65536)
    timestamp: str | float | None = Field(
        default=None,
        description="RFC 3339, epoch seconds/ms, or RFC 3164; bad or missing = received time",
    )
    syslog_severity: Severity | None = Field(default=None, description=SEVERITY_TEXT)
    source_type: str | None = Field(default=None, max_length=128)


class TrapData(BaseModel):
    """The data of ``io.mutt.snmp.trap.v1``."""

    model_config = ConfigDict(extra="allow")

    hostname: str | None = Field(default=None, max_length=255, description=HOSTNAME_FOR_TRAPS)
    agent_address: str | None = Field(
        default=None, description="the agent's address: the hostname when there is no better one"
    )
    source_ip: str | None = Field(default=None, description="the same, as rsyslog names it")
    trap_oid: str = Field(
        max_length=512, description="numeric dotted OID; a leading dot is removed"
    )
    varbinds: Varbinds = Field(default_factory=list, description=VARBINDS_TEXT)
    message: str | None = Field(
        default=None,
        description="built when absent: the trap's name or OID and its varbinds, without"
        " sysUpTime.0 and snmpTrapOID.0",
    )
    timestamp: str | float | None = None
    syslog_severity: Severity | None = Field(default=None, description=SEVERITY_TEXT)
    severity: Severity | None = Field(
        default=None, description="used when syslog_severity is absent; the same values"
    )


class CloudEventEnvelope(BaseModel):
    """A structured-mode CloudEvent 1.0 (any type is accepted; MUTT types are normalized)."""

    model_config = ConfigDict(extra="allow")

    specversion: Literal["1.0"]
    id: str = Field(min_length=1, max_length=1024)
    source: str = Field(min_length=1, max_length=1024)
    type: str = Field(min_length=1, examples=["io.mutt.syslog.v1", "io.mutt.snmp.trap.v1"])
    time: str | None = None
    datacontenttype: str | None = None
    data: SyslogData | TrapData | dict[str, Any] | str | None = None


class LegacyEvent(SyslogData):
    """The legacy MUTT webhook body: extra fields are kept as attributes.

    With a ``trap_oid`` it is a trap: ``hostname`` and ``message`` may then be
    left out (see their descriptions).
    """

    hostname: str | None = Field(  # type: ignore[assignment]  # optional for traps only
        default=None,
        max_length=255,
        description=f"required, except for traps: {HOSTNAME_FOR_TRAPS}",
    )
    message: str | None = Field(  # type: ignore[assignment]  # optional for traps only
        default=None,
        max_length=65536,
        description="required, except for traps (built from the OID and varbinds)",
    )
    trap_oid: str | None = Field(default=None, max_length=512)
    varbinds: Varbinds | None = Field(default=None, description=VARBINDS_TEXT)
    severity: Severity | None = Field(
        default=None, description="rsyslog's name for syslog_severity; the same values"
    )


class AlertmanagerAlert(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: str
    endsAt: str | None = None
    generatorURL: str | None = None
    fingerprint: str | None = None


class AlertmanagerWebhook(BaseModel):
    """Alertmanager's webhook body, version 4."""

    model_config = ConfigDict(extra="allow")

    version: Literal["4"]
    status: Literal["firing", "resolved"] | None = None
    receiver: str | None = None
    externalURL: str | None = None
    alerts: list[AlertmanagerAlert] = Field(max_length=100_000)


class ItemError(BaseModel):
    error: str
    field: str | None = None
    index: int | None = None


class Accepted(BaseModel):
    """2xx: the events are in the stream (``duplicates`` were seen before and not re-published)."""

    status: Literal["accepted", "partially accepted"]
    accepted: int
    duplicates: int
    event_ids: list[str]
    errors: list[ItemError] | None = None


class Problem(BaseModel):
    """4xx/5xx: what is wrong, and where."""

    model_config = ConfigDict(extra="allow")

    error: str
    field: str | None = None
    index: int | None = None
    errors: list[ItemError] | None = None


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


_HEADERS = {
    "X-Correlation-ID": {"schema": {"type": "string"}, "description": "echoed or generated"},
    "X-MUTT-API-Version": {"schema": {"type": "string"}},
}
_RETRY = {**_HEADERS, "Retry-After": {"schema": {"type": "string"}, "description": "seconds"}}


def _responses(accepted_codes: tuple[int, ...] = (202,)) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status in accepted_codes:
        out[str(status)] = {
            "description": "accepted",
            "headers": _HEADERS,
            "content": _json(_ref("Accepted")),
        }
    out["400"] = {
        "description": "invalid input (a batch may be partly accepted: see accepted/errors)",
        "headers": _HEADERS,
        "content": _json({"oneOf": [_ref("Problem"), _ref("Accepted")]}),
    }
    for code, why in (
        ("401", "missing or wrong credentials"),
        ("404", "no such route"),
        ("405", "method not allowed"),
        ("413", "body too large"),
        ("415", "unsupported content type"),
    ):
        out[code] = {"description": why, "headers": _HEADERS, "content": _json(_ref("Problem"))}
    for code, why in (
        ("429", "rate limit, or too many failed authentications from this address: retry after"),
        ("503", "backlog, stream unavailable or no API key configured: retry after"),
    ):
        out[code] = {"description": why, "headers": _RETRY, "content": _json(_ref("Problem"))}
    return out


def _post(summary: str, content: dict[str, Any], *, deprecated: bool = False) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "security": [{"apiKey": []}, {"bearer": []}, {}],
        "requestBody": {"required": True, "content": content},
        "responses": _responses(),
    }
    if deprecated:
        op["deprecated"] = True
        op["description"] = (
            f"Deprecated: answers carry Deprecation and Sunset ({DEPRECATED_SUNSET}) headers."
        )
    return op


def openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 document of every ingest endpoint."""
    models: list[type[BaseModel]] = [
        SyslogData,
        TrapData,
        CloudEventEnvelope,
        LegacyEvent,
        AlertmanagerAlert,
        AlertmanagerWebhook,
        ItemError,
        Accepted,
        Problem,
        Event,
        Varbind,
    ]
    schemas: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    legacy = {
        "application/json": {
            "schema": {
                "oneOf": [
                    _ref("LegacyEvent"),
                    {"type": "array", "items": _ref("LegacyEvent"), "minItems": 1},
                ]
            }
        },
        "application/x-ndjson": {
            "schema": {"type": "string", "description": "one LegacyEvent per line"}
        },
    }
    ce_binary_headers = [
        {"name": f"ce-{n}", "in": "header", "required": False, "schema": {"type": "string"}}
        for n in ("specversion", "id", "source", "type", "time")
    ]
    root = _post(
        "CloudEvents: binary (ce-* headers), structured, or batch mode",
        {
            "application/cloudevents+json": {"schema": _ref("CloudEventEnvelope")},
            "application/cloudevents-batch+json": {
                "schema": {"type": "array", "items": _ref("CloudEventEnvelope")}
            },
            "application/json": {"schema": {"oneOf": [_ref("SyslogData"), _ref("TrapData")]}},
        },
    )
    root["parameters"] = ce_binary_headers
    am = {"application/json": {"schema": _ref("AlertmanagerWebhook")}}
    ops = {
        "get": {"responses": {"200": {"description": "ok"}, "503": {"description": "not ready"}}}
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "MUTT ingest",
            "version": API_VERSION,
            "description": "Send events to MUTT: CloudEvents, the legacy webhook, or Alertmanager.",
        },
        "paths": {
            "/": {"post": root},
            "/api/v2/ingest": {
                "post": _post("Legacy MUTT webhook: one object, an array, or NDJSON", legacy)
            },
            "/ingest": {"post": _post("Legacy MUTT webhook (old path)", legacy, deprecated=True)},
            "/api/v1/ingest": {
                "post": _post("Legacy MUTT webhook (v1 path)", legacy, deprecated=True)
            },
            "/api/v2/alertmanager": {
                "post": _post("Prometheus Alertmanager webhook (version 4)", am)
            },
            "/alertmanager": {
                "post": _post("Alertmanager webhook (old path)", am, deprecated=True)
            },
            "/healthz": {
                "get": {"summary": "liveness", "responses": {"200": {"description": "alive"}}}
            },
            "/readyz": {
                "get": {"summary": "readiness: Redis reachable, credentials state", **ops["get"]}
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {"200": {"description": "text exposition"}},
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "this document",
                    "responses": {"200": {"description": "OpenAPI 3.1"}},
                }
            },
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-KEY"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
    }
