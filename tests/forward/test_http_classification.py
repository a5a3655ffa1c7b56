"""The shared classification rules, without a network."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from urllib3.exceptions import ProtocolError

from functions.forward.sinks.http import classify, mask, network_failure, parse_retry_after

NOW = datetime(2025, 1, 15, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 3 ", 3.0),
        ("1.5", 1.5),
        ("0", 0.0),
        ("Wed, 15 Jan 2025 12:01:30 GMT", 90.0),
        ("Wed, 15 Jan 2025 11:00:00 GMT", 0.0),  # in the past: retry now
        ("-5", None),
        ("nan", None),
        ("inf", None),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == seconds


def test_classify_collapses_whitespace_and_caps_the_body() -> None:
    result = classify(400, "line one\n   line two\t" + "y" * 500)
    assert result.detail == "HTTP 400: line one line two " + "y" * 279
    assert classify(404, "").detail == "HTTP 404"


def test_mask_ignores_trivially_short_secrets() -> None:
    assert mask("abc token abc", ["abc", "token"]) == "abc *** abc"


def test_network_failure_names_only_the_host() -> None:
    exc = ProtocolError("HTTPSConnectionPool(host='h', port=443): url: /p?token=SECRET")
    result = network_failure(exc, "https://hooks.example.com/p?token=SECRET", 5)
    assert result.outcome == "retry"
    assert result.detail == "cannot reach hooks.example.com: ConnectionError"
