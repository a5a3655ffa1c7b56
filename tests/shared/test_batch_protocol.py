"""The relay's batch protocol: what a function answers is what the relay settles."""

from __future__ import annotations

import orjson
import pytest
from cloudevents.http import CloudEvent
from hypothesis import given
from hypothesis import strategies as st

from shared.batch_protocol import (
    ProtocolError,
    decode_batch,
    decode_outcomes,
    encode_batch,
    encode_outcomes,
)
from shared.envelope import encode
from shared.handler import Outcome

texts = st.text(max_size=40)
data = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)


@st.composite
def events(draw: st.DrawFn) -> CloudEvent:
    return CloudEvent(
        {
            "type": draw(st.sampled_from(["io.mutt.alert.raised.v1", "io.mutt.audit.recorded.v1"])),
            "source": "/test",
            "id": draw(st.text(min_size=1, max_size=20)),
        },
        draw(data),
    )


@st.composite
def outcomes(draw: st.DrawFn) -> Outcome:
    kind = draw(st.sampled_from(["ok", "reject", "retry"]))
    if kind == "reject":
        return Outcome.reject(draw(texts))
    if kind == "retry":
        return Outcome.retry(draw(texts))
    return Outcome.ok(
        *draw(st.lists(events(), max_size=3)),
        later=draw(st.lists(st.tuples(events(), st.floats(0, 1e6)), max_size=2)),
        dead=draw(st.lists(st.tuples(events(), texts), max_size=2)),
    )


def same(a: Outcome, b: Outcome) -> bool:
    def docs(xs: tuple[CloudEvent, ...]) -> list[object]:
        return [orjson.loads(encode(x)) for x in xs]

    return (
        a.status == b.status
        and a.reason == b.reason
        and docs(a.replies) == docs(b.replies)
        and [(orjson.loads(encode(e)), d) for e, d in a.later]
        == [(orjson.loads(encode(e)), d) for e, d in b.later]
        and [(orjson.loads(encode(e)), w) for e, w in a.dead]
        == [(orjson.loads(encode(e)), w) for e, w in b.dead]
    )


@given(st.lists(outcomes(), max_size=5))
def test_outcomes_round_trip(items: list[Outcome]) -> None:
    back = decode_outcomes(encode_outcomes(items), len(items))
    assert all(same(a, b) for a, b in zip(items, back, strict=True))


@given(st.lists(events(), max_size=5))
def test_a_batch_of_stream_entries_is_their_events(items: list[CloudEvent]) -> None:
    decoded = decode_batch(encode_batch([encode(e) for e in items]))
    assert [orjson.loads(encode(e)) for e in decoded if not isinstance(e, str)] == [
        orjson.loads(encode(e)) for e in items
    ]


def test_a_bad_element_is_that_events_verdict_not_the_batchs() -> None:
    good = encode(CloudEvent({"type": "t", "source": "/s", "id": "1"}, {"a": 1}))
    decoded = decode_batch(b"[" + good + b',{"id": 2}, 3]')
    assert not isinstance(decoded[0], str)
    assert (
        decoded[1]
        == "batch element 1: entry lacks CloudEvent attribute(s): specversion, id, source, type"
    )
    assert decoded[2] == "batch element 2: entry is not a JSON object"


HEAD = b'{"status": "ok", "reason": "", "replies": ["t"], "later": [], "dead": []}'
MAYBE = b'{"status": "maybe", "reason": "", "replies": [], "later": [], "dead": []}'


@pytest.mark.parametrize(
    ("body", "expected", "message"),
    [
        (b"not json\n", 1, "outcome 0: a malformed header"),
        (b"", 1, "expected 1 outcomes, got 0"),
        (MAYBE + b"\n", 1, "unknown outcome status 'maybe'"),
        (HEAD + b"\n", 1, "outcome 0: fewer event lines than its header says"),
        (HEAD + b"\n\n", 1, "outcome 0: fewer event lines than its header says"),
    ],
)
def test_an_answer_outside_the_protocol_is_refused_whole(
    body: bytes, expected: int, message: str
) -> None:
    with pytest.raises(ProtocolError, match=message):
        decode_outcomes(body, expected)


def test_the_events_an_outcome_carries_are_passed_on_unparsed() -> None:
    reply = CloudEvent({"type": "io.mutt.alert.raised.v1", "source": "/a", "id": "1"}, {"x": 1})
    (outcome,) = decode_outcomes(encode_outcomes([Outcome.ok(reply)]), 1)
    (raw,) = outcome.replies
    assert raw["type"] == "io.mutt.alert.raised.v1"
    assert encode(raw) == encode(reply)  # the very bytes the function wrote
