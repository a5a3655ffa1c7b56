"""The data carried by MUTT's CloudEvents (docs/architecture.md, "Events").

These pydantic models are the contract between the stages: ingest emits
``Event`` (type ``io.mutt.event.accepted.v1``), alert emits ``Alert``
(``io.mutt.alert.raised.v1``), forward may reply ``Delivery``
(``io.mutt.alert.delivered.v1``). Their JSON Schemas are published under
``docs/schemas/`` (``mutt schemas``) and every event's ``dataschema`` points
at its file.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# CloudEvent types (docs/architecture.md, "Events").
TYPE_SYSLOG = "io.mutt.syslog.v1"
TYPE_TRAP = "io.mutt.snmp.trap.v1"
TYPE_GENERIC = "io.mutt.event.v1"
TYPE_ACCEPTED = "io.mutt.event.accepted.v1"
TYPE_ALERT = "io.mutt.alert.raised.v1"
TYPE_DELIVERED = "io.mutt.alert.delivered.v1"
TYPE_PING = "dev.knative.sources.ping"
# Internal: the alert stage's audit records, written to PostgreSQL by the audit writer.
TYPE_AUDIT = "io.mutt.audit.recorded.v1"
INTERNAL_TYPES = frozenset({TYPE_AUDIT})
INBOUND_TYPES = frozenset({TYPE_SYSLOG, TYPE_TRAP, TYPE_GENERIC})

SCHEMA_BASE = "https://mutt.example.org/schemas/"

# Namespace for deterministic ids: event_id = uuid5(NS, source + "\n" + id).
MUTT_NAMESPACE = uuid.UUID("6f1c7a52-52b1-4c5e-9a0e-2b7d1f3c9e10")
_NAMESPACE_BYTES = MUTT_NAMESPACE.bytes


class Severity(IntEnum):
    """Syslog severity (RFC 5424 section 6.2.1); lower is worse."""

    EMERGENCY = 0
    ALERT = 1
    CRITICAL = 2
    ERROR = 3
    WARNING = 4
    NOTICE = 5
    INFO = 6
    DEBUG = 7

    @property
    def label(self) -> str:
        """The canonical lower-case name (``warning``)."""
        return self.name.lower()


# Every spelling senders use for a severity, lower-cased.
SEVERITY_ALIASES: dict[str, Severity] = {
    "emergency": Severity.EMERGENCY,
    "emerg": Severity.EMERGENCY,
    "panic": Severity.EMERGENCY,
    "alert": Severity.ALERT,
    "critical": Severity.CRITICAL,
    "crit": Severity.CRITICAL,
    "error": Severity.ERROR,
    "err": Severity.ERROR,
    "warning": Severity.WARNING,
    "warn": Severity.WARNING,
    "notice": Severity.NOTICE,
    "info": Severity.INFO,
    "informational": Severity.INFO,
    "debug": Severity.DEBUG,
}


# ITU-T X.733 section 8.1.2.3 "perceived severity": what alarm senders (SNMP alarm
# MIBs, NMS exports) say instead of a syslog level. Ingest maps it to a syslog level
# (docs/sources.md); "cleared" ends an alarm instead of raising one.
PerceivedSeverity = Literal["critical", "major", "minor", "warning", "indeterminate", "cleared"]


def parse_severity(value: object) -> Severity:
    """Turn ``3``, ``"3"``, ``"err"`` or ``"Error"`` into a ``Severity``.

    Raises ``ValueError`` with a message naming the accepted forms.
    """
    if isinstance(value, bool):
        raise ValueError("severity must be 0-7 or a syslog severity name, not a boolean")
    if isinstance(value, int):
        if 0 <= value <= 7:
            return Severity(value)
        raise ValueError(f"severity {value} is out of range 0-7")
    if isinstance(value, str):
        text = value.strip().lower()
        if text.isdigit() and len(text) == 1 and text <= "7":
            return Severity(int(text))
        if text in SEVERITY_ALIASES:
            return SEVERITY_ALIASES[text]
        raise ValueError(
            f"unknown severity {value[:40]!r}: use 0-7 or one of "
            "emergency, alert, critical, error, warning, notice, info, debug"
        )
    raise ValueError(f"severity must be a number 0-7 or a name, not {type(value).__name__}")


def event_id_for(source: str, ce_id: str) -> uuid.UUID:
    """The deterministic identity of an inbound event (``source`` + ``id``)."""
    return uuid.UUID(event_id_text(source, ce_id))


def event_id_text(source: str, ce_id: str) -> str:
    """``str(event_id_for(source, ce_id))`` at a fifth of the cost (ingest's hot path).

    RFC 4122 version 5, as ``uuid.uuid5`` computes it (a property test keeps
    the two equal), without building ``UUID`` objects in Python: pydantic
    parses the text in Rust when the event is validated.
    """
    name = f"{source}\n{ce_id}".encode()  # raises on a lone surrogate, as uuid5 does
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name, usedforsecurity=False).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    x = digest.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def alert_id_for(event_id: uuid.UUID, rule_key: str) -> uuid.UUID:
    """The deterministic id of the alert a rule raised for an event."""
    return uuid.uuid5(event_id, rule_key)


class Handling(StrEnum):
    """What operators want done (the ``*_handling`` columns of a rule)."""

    PAGE_AND_TICKET = "Page_and_ticket"
    PAGE_ONLY = "Page_only"
    TICKET_ONLY = "Ticket_only"
    IGNORE = "Ignore"

    @property
    def forwards(self) -> bool:
        """True when the decision creates a delivery (everything but Ignore)."""
        return self is not Handling.IGNORE


class Varbind(BaseModel):
    """One SNMP variable binding of a trap."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    oid: str = Field(max_length=512)
    type: str | None = Field(default=None, max_length=64)
    value: str = Field(max_length=8192)


class Event(BaseModel):
    """A normalized event: the data of ``io.mutt.event.accepted.v1``."""

    model_config = ConfigDict(extra="forbid")

    event_id: uuid.UUID = Field(description="uuid5 of the inbound CloudEvent source and id")
    source: str = Field(min_length=1, max_length=1024, description="inbound CloudEvent source")
    id: str = Field(min_length=1, max_length=1024, description="inbound CloudEvent id")
    hostname: str = Field(min_length=1, max_length=255, description="trimmed, lower-cased")
    time: datetime = Field(description="event time in UTC")
    time_estimated: bool = Field(
        default=False, description="true when the sender's time was missing or unparsable"
    )
    message: str = Field(default="", max_length=65536)
    severity: Severity | None = Field(
        default=None,
        description="syslog severity 0-7 (an X.733 word is mapped, see perceived_severity);"
        " null when none was sent or it could not be read (the raw value is kept in attributes)",
    )
    severity_name: str | None = Field(default=None, description="canonical severity name")
    perceived_severity: PerceivedSeverity | None = Field(
        default=None,
        # left out of the JSON when null: events without one look as they always did
        exclude_if=lambda value: value is None,
        description="the sender's ITU X.733 alarm severity, when it sent one; cleared means"
        " the event ends the alarm it names (it resolves, it never raises an alert)",
    )
    trap_oid: str | None = Field(
        default=None,
        pattern=r"^[0-9]+(\.[0-9]+)*$",
        max_length=512,
        description="numeric dotted OID without a leading dot",
    )
    varbinds: list[Varbind] = Field(default_factory=list, max_length=1024)
    source_type: str | None = Field(default=None, max_length=128)
    attributes: dict[str, Any] = Field(default_factory=dict, description="sender's extra fields")
    correlation_id: str | None = Field(default=None, max_length=128)
    received_at: datetime

    @field_validator("time", "received_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Alert(BaseModel):
    """A decision that operators must act on: the data of ``io.mutt.alert.raised.v1``."""

    model_config = ConfigDict(extra="forbid")

    alert_id: uuid.UUID = Field(description="uuid5(event_id, rule key): stable across redelivery")
    event_id: uuid.UUID
    rule_id: int | Literal["unhandled", "storm"] = Field(
        description="the rule that fired; unhandled (meta-alert) or storm (storm summary)"
    )
    handling: Handling
    team: str = Field(min_length=1, max_length=128)
    environment: Literal["prod", "dev"]
    severity: Severity
    severity_name: str
    summary: str = Field(max_length=4096)
    dedup_key: str = Field(min_length=1, max_length=255)
    raised_at: datetime
    event: Event
    action: Literal["trigger", "resolve"] = Field(
        default="trigger",
        description="trigger opens (or repeats) a problem; resolve closes the open alert"
        " with the same dedup_key at the sink (a clear event paired with its problem)",
    )


class Delivery(BaseModel):
    """What happened to one alert at one sink: ``io.mutt.alert.delivered.v1``."""

    model_config = ConfigDict(extra="forbid")

    alert_id: uuid.UUID
    sink: str
    outcome: Literal["delivered", "duplicate", "failed"]
    attempts: int = Field(ge=1)
    latency_seconds: float = Field(ge=0)
    detail: str | None = None


TYPE_JANITOR_REPORT = "io.mutt.janitor.completed.v1"


class JanitorRequest(BaseModel):
    """The data of the cron event (PingSource, systemd timer, CLI)."""

    model_config = ConfigDict(extra="forbid")

    task: Literal["all", "reclaim", "partitions", "retention", "replay"] = "all"


SCHEMAS: dict[str, type[BaseModel]] = {
    TYPE_ACCEPTED: Event,
    TYPE_ALERT: Alert,
    TYPE_DELIVERED: Delivery,
}


def schema_url(event_type: str) -> str:
    """The ``dataschema`` of an event type MUTT emits."""
    return f"{SCHEMA_BASE}{event_type}.json"


def utcnow() -> datetime:
    """Timezone-aware now, so nothing naive ever reaches the database."""
    return datetime.now(UTC)
