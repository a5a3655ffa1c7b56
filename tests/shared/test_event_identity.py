"""Event identity: the fast text form equals RFC 4122 uuid5, for any source and id."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from shared.models import MUTT_NAMESPACE, event_id_for, event_id_text


@given(st.text(max_size=300), st.text(max_size=300))
def test_event_id_text_is_uuid5_of_source_and_id(source: str, ce_id: str) -> None:
    expected = uuid.uuid5(MUTT_NAMESPACE, f"{source}\n{ce_id}")
    assert event_id_text(source, ce_id) == str(expected)
    assert event_id_for(source, ce_id) == expected
    assert expected.version == 5
