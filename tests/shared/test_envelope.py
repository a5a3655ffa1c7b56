"""Envelopes: the hot-path encoder writes the same CloudEvent as the general one."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from shared.envelope import decode, encode, encode_new, make_event
from shared.models import TYPE_ACCEPTED, Event
from tests.support.factories import event

messages = st.text(max_size=200)
attributes = st.dictionaries(
    st.text(min_size=1, max_size=10),
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**63), 2**63 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=20),
    ),
    max_size=5,
)


@given(messages, attributes)
def test_encode_new_matches_encode_of_make_event(message: str, attrs: dict[str, object]) -> None:
    ev = event(7, message).model_copy(update={"attributes": attrs})
    ev = Event.model_validate(ev.model_dump())
    fast = decode(encode_new(TYPE_ACCEPTED, "/mutt/ingest", ev, id="x", traceparent="t"))
    slow = decode(encode(make_event(TYPE_ACCEPTED, "/mutt/ingest", ev, id="x", traceparent="t")))
    assert fast.data == slow.data
    fast_attrs, slow_attrs = dict(fast.get_attributes()), dict(slow.get_attributes())
    fast_attrs.pop("time"), slow_attrs.pop("time")
    assert fast_attrs == slow_attrs
    assert Event.model_validate(fast.data) == ev


def test_encode_new_uses_the_given_time() -> None:
    ev = event(1)
    got = decode(encode_new(TYPE_ACCEPTED, "/s", ev, id="x", time="2026-01-02T03:04:05+00:00"))
    assert got["time"] is not None
    assert str(got["time"]).startswith("2026-01-02T03:04:05")
