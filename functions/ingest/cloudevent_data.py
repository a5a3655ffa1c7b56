"""The data of an inbound MUTT CloudEvent → ``Event``.

Only the three MUTT types are accepted. Any other type is refused with the
list of accepted ones rather than guessed at: a foreign event (for example
the CloudEvents conformance samples, ``{"world": "hello"}``) has no hostname
or message, and routing it as an "unknown" event would only page someone
about nothing. Errors in the data are reported as ``data.<field>``.
"""

from __future__ import annotations

from datetime import datetime

from functions.ingest.errors import InputError, json_type, preview
from functions.ingest.fields import Kind, build_event
from functions.ingest.limits import MAX_CORRELATION_ID_CHARS
from functions.ingest.normalize import check_identity, check_text
from shared.models import TYPE_GENERIC, TYPE_SYSLOG, TYPE_TRAP, Event

ACCEPTED_TYPES: dict[str, Kind] = {
    TYPE_SYSLOG: Kind.SYSLOG,
    TYPE_TRAP: Kind.TRAP,
    TYPE_GENERIC: Kind.GENERIC,
}
_ACCEPTED_LIST = ", ".join(sorted(ACCEPTED_TYPES))


def parse_cloudevent_data(
    ce_type: object,
    data: object,
    *,
    source: object,
    event_id: object,
    time: object = None,
    received_at: datetime | None = None,
    correlation_id: str | None = None,
) -> Event:
    """Validate a CloudEvent's ``type``, ``source``, ``id`` and JSON ``data`` into an ``Event``.

    ``time`` is the CloudEvent ``time`` attribute, used when the data carries
    no ``timestamp``/``time`` of its own.
    """
    kind = ACCEPTED_TYPES.get(ce_type) if isinstance(ce_type, str) else None
    if kind is None:
        accepted = f"ingest accepts {_ACCEPTED_LIST}"
        raise InputError("type", f"unsupported CloudEvent type {preview(ce_type)}: {accepted}")
    checked_source, checked_id = check_identity(source, event_id)
    correlation_id = check_text(correlation_id, "correlation_id", MAX_CORRELATION_ID_CHARS)
    if not isinstance(data, dict):
        raise InputError(
            "data", f"must be a JSON object (datacontenttype application/json), not {_kind(data)}"
        )
    try:
        return build_event(
            data,
            kind=kind,
            source=checked_source,
            event_id=checked_id,
            received_at=received_at,
            correlation_id=correlation_id,
            default_time=time,
        )
    except InputError as exc:
        raise InputError(f"data.{exc.field}", exc.problem) from None


def _kind(data: object) -> str:
    if isinstance(data, bytes | bytearray | memoryview):
        return "undecoded bytes"
    return json_type(data)
