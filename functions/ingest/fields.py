"""One MUTT-shaped JSON object → one ``Event``: the rules every format shares.

The legacy webhook body and the data of the three MUTT CloudEvent types have
the same shape, so they share this builder; only what is required differs
(``Kind``). Fields it does not know are kept in ``Event.attributes``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum

from pydantic import ValidationError

from functions.ingest.attributes import check_attributes
from functions.ingest.errors import InputError
from functions.ingest.limits import MAX_CORRELATION_ID_CHARS, MAX_SOURCE_TYPE_CHARS
from functions.ingest.normalize import (
    check_identity,
    check_message,
    check_text,
    normalize_hostname,
)
from functions.ingest.oids import SYS_NAME, normalize_oid
from functions.ingest.severity import raw_value, read_severity
from functions.ingest.timeparse import parse_time
from functions.ingest.varbinds import VarbindData, parse_varbinds, trap_message
from shared.metrics import UNKNOWN_SEVERITY
from shared.models import Event, event_id_text, utcnow


class Kind(Enum):
    """What an object must contain: traps need an OID, the others a message."""

    LEGACY = "legacy"
    SYSLOG = "syslog"
    TRAP = "trap"
    GENERIC = "generic"


# Keys this module consumes; every other key becomes an attribute.
KNOWN_KEYS = frozenset(
    {
        "hostname",
        "timestamp",
        "time",
        "message",
        "syslog_severity",
        "severity",
        "trap_oid",
        "varbinds",
        "source_type",
        "_correlation_id",
    }
)
# A trap's agent is often known only by its address.
_TRAP_ADDRESS_KEYS = ("agent_address", "source_ip")


def build_event(
    obj: dict[str, object],
    *,
    kind: Kind,
    source: str,
    event_id: str,
    received_at: datetime | None = None,
    correlation_id: str | None = None,
    default_time: object = None,
) -> Event:
    """Validate and normalize ``obj`` into an ``Event`` (``InputError`` otherwise).

    ``default_time`` (e.g. the CloudEvent ``time`` attribute) is used when the
    object carries neither ``timestamp`` nor ``time``.
    """
    source, event_id = check_identity(source, event_id)
    received = received_at_or_now(received_at)
    attributes = {key: value for key, value in obj.items() if key not in KNOWN_KEYS}

    trap_oid = normalize_oid(obj.get("trap_oid"))
    if kind is Kind.TRAP and trap_oid is None:
        raise InputError("trap_oid", "is required for an SNMP trap")
    varbinds = parse_varbinds(obj.get("varbinds"))
    hostname = _hostname(obj, varbinds) if trap_oid is not None else _plain_hostname(obj)

    time_key = "timestamp" if "timestamp" in obj else "time"
    raw_time = obj.get(time_key)
    sent = raw_time is not None and raw_time != ""
    if not sent:
        raw_time = default_time
    time = parse_time(raw_time, received) if raw_time is not None else None
    if time is None and sent:
        attributes[time_key] = raw_time  # unreadable: keep what the sender wrote
    if time_key == "timestamp" and "time" in obj:
        attributes["time"] = obj["time"]

    severity_key = "syslog_severity" if obj.get("syslog_severity") is not None else "severity"
    raw_severity = obj.get(severity_key)
    reading = read_severity(raw_severity, trap=trap_oid is not None)
    if reading.unknown:  # unreadable: keep what the sender wrote, the default applies
        attributes[severity_key] = raw_value(raw_severity)
    if severity_key == "syslog_severity" and "severity" in obj:
        attributes["severity"] = obj["severity"]  # not ours to interpret
    severity = reading.severity

    message = check_message(obj.get("message"), required=trap_oid is None)
    if not message and trap_oid is not None:
        message = trap_message(trap_oid, varbinds)

    if correlation_id is None:
        correlation_id = check_text(
            obj.get("_correlation_id"), "_correlation_id", MAX_CORRELATION_ID_CHARS
        )
    else:  # the caller's (X-Correlation-ID header): still input, still checked
        correlation_id = check_text(correlation_id, "correlation_id", MAX_CORRELATION_ID_CHARS)
    event = make_event(
        {
            "event_id": event_id_text(source, event_id),
            "source": source,
            "id": event_id,
            "hostname": hostname,
            "time": time if time is not None else received,
            "time_estimated": time is None,
            "message": message,
            "severity": severity,
            "severity_name": severity.label if severity is not None else None,
            "perceived_severity": reading.perceived,
            "trap_oid": trap_oid,
            "varbinds": varbinds,
            "source_type": check_text(obj.get("source_type"), "source_type", MAX_SOURCE_TYPE_CHARS),
            "attributes": check_attributes(attributes),
            "correlation_id": correlation_id,
            "received_at": received,
        }
    )
    if reading.unknown:  # counted once the event is known to be valid
        UNKNOWN_SEVERITY.labels(kind.value).inc()
    return event


def make_event(fields: dict[str, object]) -> Event:
    """Validate once with pydantic (faster than ``model_construct`` in pydantic 2.14).

    The checks before it make a ``ValidationError`` unreachable; should one
    happen, it still becomes an ``InputError``, never a 500.
    """
    try:
        return Event.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "event"
        raise InputError(field, first["msg"]) from None


def received_at_or_now(received_at: datetime | None) -> datetime:
    """The caller's receive time (one per request), as an aware UTC datetime."""
    if received_at is None:
        return utcnow()
    if received_at.tzinfo is None:
        return received_at.replace(tzinfo=UTC)
    return received_at


def _plain_hostname(obj: dict[str, object]) -> str:
    value = obj.get("hostname")
    if value is None:
        raise InputError("hostname", "is required")
    return normalize_hostname(value)


def _hostname(obj: dict[str, object], varbinds: list[VarbindData]) -> str:
    """A trap's agent: ``hostname``, else sysName.0, else its address (as ``mutt trap-handle``).

    Trap senders often know the agent only by the address the trap came
    from; a sysName that is no usable hostname (``Core Router``) is skipped.
    """
    value = obj.get("hostname")
    if value is not None and value != "":
        return normalize_hostname(value)
    sys_name = next((v["value"] for v in varbinds if v["oid"] == SYS_NAME), None)
    if sys_name:
        try:
            return normalize_hostname(sys_name, "varbinds")
        except InputError:
            pass
    for key in _TRAP_ADDRESS_KEYS:
        value = obj.get(key)
        if value is not None and value != "":
            return normalize_hostname(value, key)
    raise InputError(
        "hostname",
        f"is required: a trap without one needs a sysName.0 varbind ({SYS_NAME}),"
        " agent_address or source_ip",
    )
