"""The legacy MUTT webhook (``POST /api/v2/ingest``): one object or an array.

Legacy events carry no id, so the caller supplies the identity: ``source``
(e.g. ``"/api/v2/ingest"``) and a ``request_id`` that is stable across a
sender's retries (``X-Request-ID``/``Idempotency-Key`` when sent, else a fresh
uuid4). Item ``i`` of the body gets id ``f"{request_id}:{i}"``, so a retried
request deduplicates item by item while two items of one request never collide.
"""

from __future__ import annotations

from datetime import datetime

from functions.ingest.errors import InputError, json_type
from functions.ingest.fields import Kind, build_event, received_at_or_now
from functions.ingest.limits import DEFAULT_MAX_BATCH
from shared.models import Event


def legacy_items(body: object, max_items: int = DEFAULT_MAX_BATCH) -> list[dict[str, object]]:
    """The objects in a legacy body: an object is one item, an array (rsyslog batch) is many."""
    if isinstance(body, dict):
        return [body]
    if not isinstance(body, list):
        raise InputError(
            "body", f"must be a JSON object or an array of objects, not {json_type(body)}"
        )
    if not body:
        raise InputError("body", "is an empty array: send at least one event")
    if len(body) > max_items:
        raise InputError("body", f"has {len(body)} events, the limit per request is {max_items}")
    for index, item in enumerate(body):
        if not isinstance(item, dict):
            raise InputError("body", f"must be a JSON object, not {json_type(item)}", index)
    return body  # every item checked above


def item_id(request_id: str, index: int) -> str:
    """The id of item ``index`` of a request (see the module docstring)."""
    return f"{request_id}:{index}"


def parse_legacy_event(
    obj: object,
    *,
    source: str,
    event_id: str,
    received_at: datetime | None = None,
    correlation_id: str | None = None,
    index: int | None = None,
) -> Event:
    """One legacy object → ``Event``; errors carry ``index`` for batch replies."""
    try:
        if not isinstance(obj, dict):
            raise InputError("body", f"must be a JSON object, not {json_type(obj)}")
        return build_event(
            obj,
            kind=Kind.LEGACY,
            source=source,
            event_id=event_id,
            received_at=received_at,
            correlation_id=correlation_id,
        )
    except InputError as exc:
        exc.index = index
        raise


def parse_legacy(
    body: object,
    *,
    source: str,
    request_id: str,
    received_at: datetime | None = None,
    correlation_id: str | None = None,
    max_items: int = DEFAULT_MAX_BATCH,
) -> list[Event]:
    """All events of a legacy body, or the first ``InputError`` (all or nothing)."""
    items = legacy_items(body, max_items)
    received = received_at_or_now(received_at)
    batch = isinstance(body, list)
    return [
        parse_legacy_event(
            item,
            source=source,
            event_id=item_id(request_id, index),
            received_at=received,
            correlation_id=correlation_id,
            index=index if batch else None,
        )
        for index, item in enumerate(items)
    ]


def parse_legacy_partial(
    body: object,
    *,
    source: str,
    request_id: str,
    received_at: datetime | None = None,
    correlation_id: str | None = None,
    max_items: int = DEFAULT_MAX_BATCH,
) -> tuple[list[Event], list[InputError]]:
    """The valid events and the errors of the others, for batch senders.

    rsyslog resends a whole batch on a 400, so one bad line would block the
    good ones forever; with this the HTTP layer can accept what is valid and
    report the rest. Body-level problems (not an array, too long) still raise.
    """
    items = legacy_items(body, max_items)
    received = received_at_or_now(received_at)
    batch = isinstance(body, list)
    events: list[Event] = []
    errors: list[InputError] = []
    for index, item in enumerate(items):
        try:
            events.append(
                parse_legacy_event(
                    item,
                    source=source,
                    event_id=item_id(request_id, index),
                    received_at=received,
                    correlation_id=correlation_id,
                    index=index if batch else None,
                )
            )
        except InputError as exc:
            errors.append(exc)
    return events, errors
