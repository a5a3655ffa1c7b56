"""Event times: every accepted form lands as the same instant, in UTC, on every path."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter

from shared.models import Event
from tests.support.factories import event

_PYDANTIC_DATETIME = TypeAdapter(datetime)


def _reference(value: object) -> datetime:
    """What the time fields meant before the fast path: pydantic's parser, then to UTC."""
    parsed = _PYDANTIC_DATETIME.validate_python(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _validate(value: object) -> datetime:
    doc = event(1).model_dump(mode="json")
    doc["time"] = value
    return Event.model_validate(doc).time


aware = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.timezones()
)
naive = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1))


@given(st.one_of(aware, naive))
def test_any_datetime_becomes_the_same_instant_in_utc(when: datetime) -> None:
    got = _validate(when)
    assert got.tzinfo is UTC
    expected = when.replace(tzinfo=UTC) if when.tzinfo is None else when
    assert got.timestamp() == expected.timestamp()


@given(st.one_of(aware, naive), st.sampled_from(["T", " "]), st.sampled_from(["Z", "+00:00", ""]))
def test_iso_text_in_every_spelling_matches_pydantic(when: datetime, sep: str, zone: str) -> None:
    text = when.replace(tzinfo=None).isoformat(sep)
    if when.tzinfo is not None:
        text = when.astimezone(UTC).replace(tzinfo=None).isoformat(sep) + zone
    got = _validate(text)
    assert got.tzinfo is UTC
    assert got == _reference(text)
