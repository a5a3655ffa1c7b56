"""The single-event rules: one reply or none, packed replies unpack, merged outcomes."""

from __future__ import annotations

import orjson
import pytest
from cloudevents.http import CloudEvent
from hypothesis import given
from hypothesis import strategies as st

from shared.envelope import EnvelopeError, encode
from shared.handler import Outcome
from shared.models import TYPE_ALERT, TYPE_AUDIT, TYPE_DELIVERED
from shared.single_event import INNER, PACKED, merged, pack, reply_of, retry_after, unpack


def event(i: int, kind: str = TYPE_ALERT) -> CloudEvent:
    return CloudEvent({"type": kind, "source": "/mutt/alert", "id": f"id-{i}"}, {"n": i})


@given(st.lists(st.integers(0, 10_000), min_size=1, max_size=20, unique=True))
def test_pack_then_unpack_gives_the_events_back(ns: list[int]) -> None:
    events = [event(n) for n in ns]
    packed = pack(events)
    assert packed["type"] == PACKED and packed[INNER] == TYPE_ALERT
    assert [orjson.loads(encode(e)) for e in unpack(packed)] == [
        orjson.loads(encode(e)) for e in events
    ]
    assert pack(events)["id"] == packed["id"]  # a redelivery packs the same event


def test_a_reply_is_one_event_or_none() -> None:
    assert reply_of(Outcome.ok()) is None
    assert reply_of(Outcome.ok(event(1, TYPE_AUDIT), event(2, TYPE_DELIVERED))) is None
    one = reply_of(Outcome.ok(event(1), event(2, TYPE_AUDIT)))
    assert one is not None and one["id"] == "id-1"
    two = reply_of(Outcome.ok(event(1), event(2)))
    assert two is not None and two["type"] == PACKED and len(unpack(two)) == 2


def test_a_packed_event_without_events_is_refused() -> None:
    bad = CloudEvent({"type": PACKED, "source": "/x", "id": "1"}, {"events": []})
    with pytest.raises(EnvelopeError):
        unpack(bad)


def test_merged_outcomes() -> None:
    a, b, c = event(1), event(2), event(3)
    assert merged([a], [Outcome.reject("bad")]).status == "reject"  # a single event: 400
    mixed = merged([a, b, c], [Outcome.ok(a), Outcome.reject("bad"), Outcome.defer(c, 2.5)])
    assert mixed.status == "ok"
    assert [e["id"] for e, _ in mixed.dead] == ["id-2"]  # refused alone, the rest go on
    assert retry_after(mixed) == "3"
    assert merged([a, b], [Outcome.ok(), Outcome.retry("redis down")]).status == "retry"
