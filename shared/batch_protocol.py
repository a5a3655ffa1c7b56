"""The relay's batch protocol: many stream entries in one POST, one outcome per entry back.

The relay feeds MUTT's own functions with ``POST /`` of
``application/cloudevents-batch+json`` (a JSON array of structured-mode
CloudEvents, the stream entries' bytes unchanged). The function runs the
whole array through the same batch handler a stream worker calls and
answers ``200`` with ``application/vnd.mutt.outcomes+json``: a JSON array,
one record per input event, in order. A record is a JSON header line, then
one line per event it carries, as ``encode`` writes it (compact JSON: never a
newline inside)::

    {"status": "ok" | "reject" | "retry", "reason": "...",
     "replies": [type, ...], "later": [seconds, ...], "dead": ["why", ...]}
    <reply 1>
    ...
    <later 1>
    ...
    <dead 1>

so the relay settles the events it carries without parsing them (each is
passed on as ``RawEvent``: its bytes and its type).

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

import orjson
from cloudevents.http import CloudEvent

from shared.envelope import EnvelopeError, RawEvent, encode, from_doc
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


def encode_outcomes(outcomes: Sequence[Outcome]) -> bytes:
    """The response body: a header line per outcome, then its events' lines."""
    lines: list[bytes] = []
    for o in outcomes:
        header = {
            "status": o.status,
            "reason": o.reason,
            "replies": [str(r["type"]) for r in o.replies],
            "later": [float(delay) for _, delay in o.later],
            "dead": [why for _, why in o.dead],
        }
        lines.append(orjson.dumps(header))
        lines += [encode(r) for r in o.replies]
        lines += [encode(ce) for ce, _ in o.later]
        lines += [encode(ce) for ce, _ in o.dead]
    return b"\n".join(lines) + b"\n" if lines else b""


def decode_outcomes(body: bytes, expected: int) -> list[Outcome]:
    """The function's answer as outcomes; ``ProtocolError`` if it is not exactly that.

    The events are not parsed: each becomes a ``RawEvent`` of its type and bytes.
    """
    lines = body.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    outcomes: list[Outcome] = []
    at = 0
    while at < len(lines):
        try:
            head = orjson.loads(lines[at])
            status, reason = head["status"], str(head["reason"])
            types = [str(t) for t in head["replies"]]
            delays = [float(d) for d in head["later"]]
            whys = [str(w) for w in head["dead"]]
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(f"outcome {len(outcomes)}: a malformed header: {exc}") from None
        at += 1
        carried = lines[at : at + len(types) + len(delays) + len(whys)]
        if len(carried) != len(types) + len(delays) + len(whys) or not all(carried):
            raise ProtocolError(f"outcome {len(outcomes)}: fewer event lines than its header says")
        at += len(carried)
        if status == "reject":
            outcomes.append(Outcome.reject(reason))
        elif status == "retry":
            outcomes.append(Outcome.retry(reason))
        elif status == "ok":
            replies = [RawEvent(t, raw) for t, raw in zip(types, carried, strict=False)]
            rest = carried[len(types) :]
            later = [(RawEvent("", raw), d) for d, raw in zip(delays, rest, strict=False)]
            dead_raw = rest[len(delays) :]
            dead = [(RawEvent("", raw), w) for w, raw in zip(whys, dead_raw, strict=True)]
            outcomes.append(Outcome.ok(*replies, later=later, dead=dead))
        else:
            raise ProtocolError(f"unknown outcome status {status!r}")
    if len(outcomes) != expected:
        raise ProtocolError(f"expected {expected} outcomes, got {len(outcomes)}")
    return outcomes
