"""The admin function's small parsers: every input is an answer or a 400 naming the field."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from functions.admin.console import _next
from functions.admin.errors import ApiError
from functions.admin.keys import ApiKey, KeyRing
from functions.admin.queries import decode_cursor, encode_cursor, parse_time
from functions.admin.session import csrf_ok, new_session, read_session
from shared.secrets import Secrets


@given(st.text(max_size=80))
def test_a_cursor_is_one_we_gave_out_or_a_400_naming_cursor(text: str) -> None:
    try:
        decode_cursor(text, (int, int))
    except ApiError as err:
        assert (err.status, err.field) == (400, "cursor")


@given(st.lists(st.integers(min_value=-(2**31), max_value=2**31), min_size=2, max_size=2))
def test_cursors_round_trip(values: list[int]) -> None:
    assert decode_cursor(encode_cursor(values), (int, int)) == values


@given(st.text(max_size=40))
def test_times_parse_or_name_the_parameter(text: str) -> None:
    try:
        when = parse_time("start_date", text)
    except ApiError as err:
        assert err.field == "start_date"
    else:
        assert when is not None and when.tzinfo is not None


def test_times_without_a_zone_are_utc() -> None:
    assert parse_time("t", "2025-06-01T12:00:00") == datetime(2025, 6, 1, 12, tzinfo=UTC)
    assert parse_time("t", "2025-06-01T12:00:00Z") == datetime(2025, 6, 1, 12, tzinfo=UTC)


@given(st.text(max_size=60))
def test_login_redirects_stay_on_this_site(text: str) -> None:
    target = _next(text)
    assert target.startswith("/") and not target.startswith("//")
    assert all(c.isprintable() and not c.isspace() for c in target)


@pytest.mark.parametrize("evil", ["//evil.example", "/\t/evil.example", "/\\evil", "https://x", ""])
def test_known_open_redirect_tricks_go_home(evil: str) -> None:
    assert _next(evil) == "/"


def test_sessions_are_signed_by_their_key_and_expire() -> None:
    key = ApiKey("admin", "s" * 32, "alice")
    ring = KeyRing(Secrets(None, environ={"MUTT_SECRET_ADMIN_API_KEYS": "admin:" + "s" * 32}))
    session, cookie = new_session(key, now=1000.0)
    found = read_session(ring, cookie, now=1001.0)
    assert found is not None and found.csrf == session.csrf
    assert read_session(ring, cookie, now=1000.0 + 9 * 3600) is None
    forged = cookie.rsplit(".", 1)[0] + "." + "0" * 64
    assert read_session(ring, forged, now=1001.0) is None
    other = KeyRing(Secrets(None, environ={"MUTT_SECRET_ADMIN_API_KEYS": "admin:" + "t" * 32}))
    assert read_session(other, cookie, now=1001.0) is None  # the key was rotated away
    assert csrf_ok(session.csrf, session.csrf, session.csrf)
    assert not csrf_ok(session.csrf, session.csrf, "x")
    assert not csrf_ok(session.csrf, None, session.csrf)
