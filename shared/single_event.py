"""One binary-mode CloudEvent in, one answer out: the rules of a Knative Broker.

Behind a Broker's Trigger (``knative/broker/``), and for any caller that
POSTs single events, a function's answer must follow Knative Eventing:

- **A reply is one CloudEvent or nothing** (knative/eventing#6797). When one
  event raises several (a clear that resolves two alerts), they are packed
  into one ``io.mutt.batch.v1`` event (``muttinner`` names the type inside), and
  the function that receives it unpacks it and handles its events as one batch.
- **2xx means done.** Whatever a function keeps for later must not wait for
  a stream worker that may not exist. Work parked in the function's own
  input stream is fine when that stream is read anyway (the alert stage's
  correlation timers go to the events stream, which the relay bridges to the
  Broker). Where nothing reads it (forward's rate limit, breaker and retry
  waits), the function answers ``429`` with ``Retry-After`` instead, and the
  Broker's delivery (``retry``, ``backoffPolicy``) brings the event back;
  sinks that already have the alert skip it by their delivered markers.
- Delivery reports (``io.mutt.alert.delivered.v1``) are observations, not
  work: they go to their capped stream, never back to the Broker.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence

import orjson
from cloudevents.http import CloudEvent

from shared.envelope import EnvelopeError, encode, from_doc
from shared.handler import Outcome
from shared.models import INTERNAL_TYPES, MUTT_NAMESPACE, TYPE_DELIVERED

PACKED = "io.mutt.batch.v1"
INNER = "muttinner"  # the type of the packed events, for a Trigger's filter
SIDE_TYPES = INTERNAL_TYPES | {TYPE_DELIVERED}


def pack(events: Sequence[CloudEvent]) -> CloudEvent:
    """Several events of one type as one (deterministic id: a redelivery packs the same)."""
    types = {str(e["type"]) for e in events}
    if len(types) != 1:
        raise ValueError(f"packed events must share one type, not {sorted(types)}")
    ids = ",".join(str(e["id"]) for e in events)
    attributes = {
        "type": PACKED,
        "source": str(events[0]["source"]),
        "id": str(uuid.uuid5(MUTT_NAMESPACE, "batch\n" + ids)),
        "datacontenttype": "application/json",
        INNER: types.pop(),
    }
    return CloudEvent(attributes, {"events": [_doc(e) for e in events]})


def _doc(event: CloudEvent) -> dict[str, object]:
    doc: dict[str, object] = orjson.loads(encode(event))
    return doc


def unpack(event: CloudEvent) -> list[CloudEvent]:
    """The events inside a packed one, or the event itself."""
    if event["type"] != PACKED:
        return [event]
    data = event.data
    docs = data.get("events") if isinstance(data, dict) else None
    if not isinstance(docs, list) or not docs:
        raise EnvelopeError(f"{PACKED} without a non-empty 'events' array")
    return [from_doc(doc) for doc in docs]


def merged(events: Sequence[CloudEvent], outcomes: Sequence[Outcome]) -> Outcome:
    """One outcome for a packed event's outcomes.

    Any transient failure retries the whole (the Broker redelivers it; what
    succeeded is recognised as done). An event refused on its own is
    dead-lettered while the others go on; a single event refused stays a 400.
    """
    if len(outcomes) == 1:
        return outcomes[0]
    retries = [o.reason for o in outcomes if o.status == "retry"]
    if retries:
        return Outcome.retry("; ".join(retries)[:2000])
    replies: list[CloudEvent] = []
    later: list[tuple[CloudEvent, float]] = []
    dead: list[tuple[CloudEvent, str]] = []
    for event, outcome in zip(events, outcomes, strict=True):
        if outcome.status == "reject":
            dead.append((event, outcome.reason))
            continue
        replies += outcome.replies
        later += outcome.later
        dead += outcome.dead
    return Outcome.ok(*replies, later=later, dead=dead)


def retry_after(outcome: Outcome) -> str:
    """``Retry-After`` for work that must wait: the soonest wait, at least one second."""
    soonest = min((delay for _, delay in outcome.later), default=1.0)
    return str(max(1, math.ceil(soonest)))


def reply_of(outcome: Outcome) -> CloudEvent | None:
    """The one event to answer with: none, the reply, or the replies packed."""
    replies = [r for r in outcome.replies if r["type"] not in SIDE_TYPES]
    if not replies:
        return None
    return replies[0] if len(replies) == 1 else pack(replies)
