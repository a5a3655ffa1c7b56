"""The relay's batch protocol: many stream entries in one POST, one outcome per entry back.

The relay feeds MUTT's own functions with ``POST /`` of
``application/cloudevents-batch+json`` (a JSON array of structured-mode
CloudEvents, the stream entries' bytes unchanged). The function runs the
whole array through the same batch handler a stream worker calls and
answers ``200`` with ``application/vnd.mutt.outcomes+json``: a JSON array,
one object per input event, in order::

    {"status": "ok" | "reject" | "retry", "reason": "...",
     "replies": [CloudEvent, ...],
     "later": [{"delay": seconds, "ce": CloudEvent}, ...],
     "dead": [{"reason": "...", "ce": CloudEvent}, ...]}

The function applies none of it: replies (internal ones included), parked
copies and dead letters travel back, and the relay applies them together
with the acknowledgement in one ``MULTI/EXEC``, exactly as a worker settles
a batch. So an entry's hand-off stays atomic whichever runtime runs it, and a
relay killed mid-request leaves the entry pending for another consumer
without anything half-published.

A request-level failure (unreachable, 5xx, 429, any status that is not 200
with this body) is never a verdict on the events: the relay backs off and
retries. Only an event's own ``reject`` dead-letters it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from cloudevents.http import CloudEvent

from shared.envelope import EnvelopeError, encode, from_doc
from shared.handler import Outcome

BATCH = "application/cloudevents-batch+json"
OUTCOMES = "application/vnd.mutt.outcomes+json"


class ProtocolError(ValueError):
    """A body that does not follow the protocol (the whole request is in doubt)."""


def encode_batch(raw_events: Sequence[bytes]) -> bytes:
    """The request body from stream entries' structured-mode bytes, unparsed."""
    return b"[" + b",".join(raw_events) + b"]"


def decode_batch(body: bytes) -> list[CloudEvent | str]:
    """Each element as a CloudEvent, or the reason it is not one (that event is rejected).

    ``ProtocolError`` when the body is not a JSON array at all.
    """
    try:
        docs = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"batch body is not JSON: {exc}") from None
    if not isinstance(docs, list):
        raise ProtocolError("batch body is not a JSON array of CloudEvents")
    events: list[CloudEvent | str] = []
    for position, doc in enumerate(docs):
        try:
            events.append(from_doc(doc))
        except EnvelopeError as exc:
            events.append(f"batch element {position}: {exc}")
    return events


def _head(status: str, reason: str) -> bytes:
    return orjson.dumps({"status": status, "reason": reason})[:-1]


def encode_outcomes(outcomes: Sequence[Outcome]) -> bytes:
    """The response body; replies and copies spliced in as the bytes ``encode`` makes."""
    parts = []
    for o in outcomes:
        later = b",".join(
            b'{"delay":' + orjson.dumps(float(delay)) + b',"ce":' + encode(ce) + b"}"
            for ce, delay in o.later
        )
        dead = b",".join(
            b'{"reason":' + orjson.dumps(why) + b',"ce":' + encode(ce) + b"}" for ce, why in o.dead
        )
        replies = b",".join(encode(r) for r in o.replies)
        parts.append(
            _head(o.status, o.reason)
            + b',"replies":['
            + replies
            + b'],"later":['
            + later
            + b'],"dead":['
            + dead
            + b"]}"
        )
    return b"[" + b",".join(parts) + b"]"


def _event(doc: Any) -> CloudEvent:
    try:
        return from_doc(doc)
    except EnvelopeError as exc:
        raise ProtocolError(f"a reply is not a CloudEvent: {exc}") from None


def decode_outcomes(body: bytes, expected: int) -> list[Outcome]:
    """The function's answer as outcomes; ``ProtocolError`` if it is not exactly that."""
    try:
        docs = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"outcomes are not JSON: {exc}") from None
    if not isinstance(docs, list) or len(docs) != expected:
        got = len(docs) if isinstance(docs, list) else type(docs).__name__
        raise ProtocolError(f"expected {expected} outcomes, got {got}")
    outcomes = []
    for doc in docs:
        if not isinstance(doc, dict):
            raise ProtocolError("an outcome is not a JSON object")
        status, reason = doc.get("status"), str(doc.get("reason", ""))
        if status == "reject":
            outcomes.append(Outcome.reject(reason))
        elif status == "retry":
            outcomes.append(Outcome.retry(reason))
        elif status == "ok":
            try:
                replies = [_event(r) for r in doc.get("replies", [])]
                later = [(_event(x["ce"]), float(x["delay"])) for x in doc.get("later", [])]
                dead = [(_event(x["ce"]), str(x["reason"])) for x in doc.get("dead", [])]
            except (KeyError, TypeError, ValueError) as exc:
                raise ProtocolError(f"a malformed outcome: {exc}") from None
            outcomes.append(Outcome.ok(*replies, later=later, dead=dead))
        else:
            raise ProtocolError(f"unknown outcome status {status!r}")
    return outcomes
