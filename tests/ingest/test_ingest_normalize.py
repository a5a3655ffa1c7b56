"""Table-driven tests of every per-field rule and its errors."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

import pytest

from functions.ingest.attributes import check_attributes
from functions.ingest.errors import InputError, preview
from functions.ingest.limits import (
    MAX_ATTRIBUTES_BYTES,
    MAX_ATTRIBUTES_DEPTH,
    MAX_ATTRIBUTES_NODES,
    MAX_MESSAGE_BYTES,
    MAX_VARBINDS,
)
from functions.ingest.normalize import (
    check_identity,
    check_message,
    check_text,
    normalize_hostname,
)
from functions.ingest.oids import normalize_oid
from functions.ingest.timeparse import parse_time
from functions.ingest.varbinds import parse_varbinds, trap_message

RECEIVED = datetime(2025, 1, 20, 12, 0, 0, tzinfo=UTC)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


# --- InputError ---------------------------------------------------------------


def test_input_error_shape() -> None:
    err = InputError("hostname", "must not be empty", 3)
    assert err.to_dict() == {"field": "hostname", "error": "must not be empty", "index": 3}
    assert str(err) == "hostname: must not be empty (item 3)"
    assert str(InputError("a", "b")) == "a: b"
    copy = pickle.loads(pickle.dumps(err))
    assert copy.to_dict() == err.to_dict()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("short", "'short'"),
        ("x" * 100, repr("x" * 64 + "...")),
        (12, "12"),
        (None, "None"),
        (10**100, "a number too large to show"),
        ([1], "a JSON array"),
        ({}, "a JSON object"),
    ],
)
def test_preview(value: object, expected: str) -> None:
    assert preview(value) == expected


# --- hostname -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("core-router-01.dc1.example.com", "core-router-01.dc1.example.com"),
        ("  Core-Router-01.DC1.Example.COM \n", "core-router-01.dc1.example.com"),
        ("host.example.com.", "host.example.com"),
        ("10.0.0.1", "10.0.0.1"),
        ("fe80::1", "fe80::1"),
        ("host_with_underscore", "host_with_underscore"),
        ("ÉCOLE-01", "école-01"),
        ("h" * 255, "h" * 255),
    ],
)
def test_hostname_normalized(value: str, expected: str) -> None:
    assert normalize_hostname(value) == expected


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (None, "must be a string, not null"),
        (12, "must be a string, not number"),
        (["a"], "must be a string, not array"),
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        (".", "must not be empty"),
        ("h" * 256, "is longer than 255 characters"),
        ("h" * 10_000, "is longer than 255 characters"),
        ("core router", "must not contain whitespace or control characters"),
        ("tab\there", "must not contain whitespace or control characters"),
        ("nul\x00host", "must not contain whitespace or control characters"),
        ("bell\x07", "must not contain whitespace or control characters"),
        ("nbsp\u00a0host", "must not contain whitespace or control characters"),
        ("surrogate\ud800", "must not contain whitespace or control characters"),
    ],
)
def test_hostname_rejected(value: object, problem: str) -> None:
    with pytest.raises(InputError) as caught:
        normalize_hostname(value)
    assert caught.value.field == "hostname"
    assert caught.value.problem.startswith(problem)


def test_hostname_error_is_not_cached() -> None:
    for _ in range(2):
        with pytest.raises(InputError):
            normalize_hostname("a b")
    assert normalize_hostname("a-b") == "a-b"


# --- trap OID -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("1.3.6.1.4.1.9.2.2.1.1.0", "1.3.6.1.4.1.9.2.2.1.1.0"),
        (".1.3.6.1.4.1.9.2.2.1.1.0", "1.3.6.1.4.1.9.2.2.1.1.0"),
        ("1.3.06.1.4.1.009", "1.3.6.1.4.1.9"),
        (" .1.3.6.1 ", "1.3.6.1"),
        ("1", "1"),
        ("iso.3.6.1.4.1.9.9.41.2.0.1", "1.3.6.1.4.1.9.9.41.2.0.1"),
        ("SNMPv2-SMI::enterprises.9.9.41.2.0.1", "1.3.6.1.4.1.9.9.41.2.0.1"),
        ("SNMPv2-SMI::mib-2.47.2.0.1", "1.3.6.1.2.1.47.2.0.1"),
        ("SNMPv2-MIB::coldStart", "1.3.6.1.6.3.1.1.5.1"),
        ("coldStart", "1.3.6.1.6.3.1.1.5.1"),
        ("IF-MIB::linkDown", "1.3.6.1.6.3.1.1.5.3"),
        ("IF-MIB::linkUp", "1.3.6.1.6.3.1.1.5.4"),
        ("SNMPv2-MIB::authenticationFailure", "1.3.6.1.6.3.1.1.5.5"),
    ],
)
def test_oid_normalized(value: object, expected: str | None) -> None:
    assert normalize_oid(value) == expected


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (1.3, "must be a string, not number"),
        (["1.3"], "must be a string, not array"),
        (
            "CISCO-CONFIG-MAN-MIB::ciscoConfigManEvent",
            "'CISCO-CONFIG-MAN-MIB::ciscoConfigManEvent'",
        ),
        ("FOO-MIB::coldStart", "'FOO-MIB::coldStart' is not a numeric OID"),
        ("1.3..6", "'1.3..6' is not a numeric OID"),
        ("1.3.6.", "'1.3.6.' is not a numeric OID"),
        ("..1.3", "'..1.3' is not a numeric OID"),
        ("1.3.a", "'1.3.a' is not a numeric OID"),
        ("1." * 300 + "1", "is longer than 512 characters"),
    ],
)
def test_oid_rejected(value: object, problem: str) -> None:
    with pytest.raises(InputError) as caught:
        normalize_oid(value)
    assert caught.value.field == "trap_oid"
    assert caught.value.problem.startswith(problem)
    if isinstance(value, str) and "::" in value:
        assert "snmptrapd -On" in caught.value.problem


# --- message and short text ---------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["x", " padded ", "multi\nline\ttext", "é" * (MAX_MESSAGE_BYTES // 2), "a" * MAX_MESSAGE_BYTES],
)
def test_message_kept_unchanged(value: str) -> None:
    assert check_message(value) is value


@pytest.mark.parametrize(
    ("value", "required", "problem"),
    [
        (None, True, "is required"),
        ("", True, "must not be empty"),
        (" \n\t", True, "must not be empty"),
        (42, True, "must be a string, not number"),
        ({"text": "x"}, False, "must be a string, not object"),
        ("a" * (MAX_MESSAGE_BYTES + 1), True, f"is {MAX_MESSAGE_BYTES + 1} bytes, the limit is"),
        ("é" * (MAX_MESSAGE_BYTES // 2 + 1), True, f"is {MAX_MESSAGE_BYTES + 2} bytes"),
        ("a\x00b", True, "must not contain NUL characters"),
        ("bad \udc80 surrogate", True, "is not valid Unicode"),
    ],
)
def test_message_rejected(value: object, required: bool, problem: str) -> None:
    with pytest.raises(InputError) as caught:
        check_message(value, required=required)
    assert caught.value.field == "message"
    assert caught.value.problem.startswith(problem)


def test_optional_message_may_be_absent() -> None:
    assert check_message(None, required=False) == ""
    assert check_message("", required=False) == ""


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ("", None), ("cisco-ios", "cisco-ios"), ("x" * 128, "x" * 128)],
)
def test_text_accepted(value: object, expected: str | None) -> None:
    assert check_text(value, "source_type", 128) == expected


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (5, "must be a string, not number"),
        ("x" * 129, "is longer than 128 characters"),
        ("a\x00", "must not contain NUL characters"),
        ("\ud83d", "is not valid Unicode"),
    ],
)
def test_text_rejected(value: object, problem: str) -> None:
    with pytest.raises(InputError) as caught:
        check_text(value, "source_type", 128)
    assert caught.value.field == "source_type"
    assert caught.value.problem.startswith(problem)


@pytest.mark.parametrize(
    ("source", "event_id", "field", "problem"),
    [
        ("", "1", "source", "must not be empty"),
        ("s", "", "id", "must not be empty"),
        (None, "1", "source", "must be a string, not null"),
        ("s", 7, "id", "must be a string, not number"),
        ("s" * 1025, "1", "source", "is longer than 1024 characters"),
        ("s", "i" * 1025, "id", "is longer than 1024 characters"),
    ],
)
def test_identity_rejected(source: object, event_id: object, field: str, problem: str) -> None:
    with pytest.raises(InputError) as caught:
        check_identity(source, event_id)
    assert (caught.value.field, caught.value.problem) == (field, problem)


# --- time ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-01-15T14:30:22Z", utc(2025, 1, 15, 14, 30, 22)),
        ("2025-11-11T10:00:00.1234567Z", utc(2025, 11, 11, 10, 0, 0, 123456)),
        ("2025-11-11T10:00:00.123456789+00:00", utc(2025, 11, 11, 10, 0, 0, 123456)),
        ("2025-01-15T14:30:22.5", utc(2025, 1, 15, 14, 30, 22, 500000)),
        ("2025-01-15 14:30:22", utc(2025, 1, 15, 14, 30, 22)),
        ("2025-01-15t14:30:22z", utc(2025, 1, 15, 14, 30, 22)),
        ("2025-01-15T16:30:22+02:00", utc(2025, 1, 15, 14, 30, 22)),
        ("2025-01-15T09:30:22-0500", utc(2025, 1, 15, 14, 30, 22)),
        (" 2025-01-15T14:30:22Z ", utc(2025, 1, 15, 14, 30, 22)),
        (1736951422, utc(2025, 1, 15, 14, 30, 22)),
        (1736951422.25, utc(2025, 1, 15, 14, 30, 22, 250000)),
        (1736951422123, utc(2025, 1, 15, 14, 30, 22, 123000)),
        (1736951422123456, utc(2025, 1, 15, 14, 30, 22, 123456)),
        (1736951422123456789, utc(2025, 1, 15, 14, 30, 22, 123456)),
        ("1736951422", utc(2025, 1, 15, 14, 30, 22)),
        ("1736951422123", utc(2025, 1, 15, 14, 30, 22, 123000)),
        ("1736951422.5", utc(2025, 1, 15, 14, 30, 22, 500000)),
        (0, utc(1970, 1, 1)),
        ("Jan 15 14:30:22", utc(2025, 1, 15, 14, 30, 22)),
        ("Jan  5 14:30:22", utc(2025, 1, 5, 14, 30, 22)),
        ("Dec 31 23:59:59", utc(2024, 12, 31, 23, 59, 59)),  # nearest to Jan 20, 2025
        ("*Mar  1 00:01:23.456", utc(2025, 3, 1, 0, 1, 23, 456000)),
        ("Jan 15 2023 14:30:22", utc(2023, 1, 15, 14, 30, 22)),
        ("Jan 15 14:30:22 UTC", utc(2025, 1, 15, 14, 30, 22)),
        ("Feb 29 10:00:00", utc(2024, 2, 29, 10, 0, 0)),  # only a leap year has it
    ],
)
def test_time_parsed(value: object, expected: datetime) -> None:
    assert parse_time(value, RECEIVED) == expected


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "yesterday",
        "2025-13-01T00:00:00Z",
        "2025-01-15T25:00:00Z",
        "2025-01-15T14:30:60Z",
        "Foo 15 14:30:22",
        "Feb 30 10:00:00",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "x" * 1000,
        float("nan"),
        float("inf"),
        10**25,
        True,
        [2025],
        {"t": 1},
    ],
)
def test_time_unreadable(value: object) -> None:
    assert parse_time(value, RECEIVED) is None


def test_rfc3164_year_rolls_forward_near_new_year() -> None:
    received = utc(2024, 12, 31, 23, 59, 0)
    assert parse_time("Jan  1 00:00:30", received) == utc(2025, 1, 1, 0, 0, 30)


# --- attributes ---------------------------------------------------------------


def nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = {"k": value}
    return value


@pytest.mark.parametrize(
    "attributes",
    [
        {},
        {"facility": "local7", "count": 3, "ratio": 0.5, "ok": True, "none": None},
        {"tags": ["a", "b"], "meta": {"site": "dc1", "rack": [1, 2]}},
        {"big": 2**64 - 1, "small": -(2**63)},
        {"deep": nested(MAX_ATTRIBUTES_DEPTH - 1)},
        {"unicode": "ünïcødé ✓"},
    ],
)
def test_attributes_accepted(attributes: dict[str, object]) -> None:
    assert check_attributes(attributes) is attributes


@pytest.mark.parametrize(
    ("attributes", "field", "problem"),
    [
        ({"deep": nested(MAX_ATTRIBUTES_DEPTH)}, "attributes.deep.k.k.k.k.k.k.k", "nests deeper"),
        ({"n": 2**64}, "attributes.n", "number is out of the 64-bit range"),
        ({"n": -(2**63) - 1}, "attributes.n", "number is out of the 64-bit range"),
        ({"f": float("nan")}, "attributes.f", "number must be finite"),
        ({"l": [1, float("inf")]}, "attributes.l[1]", "number must be finite"),
        ({"s": "a\x00"}, "attributes.s", "must not contain NUL characters"),
        ({"s": "\ud800"}, "attributes.s", "is not valid Unicode (unpaired surrogate)"),
        ({"k\x00": 1}, "attributes key", "must not contain NUL characters"),
        ({"k" * 257: 1}, "attributes key", "is longer than 256 characters"),
        ({"l": list(range(MAX_ATTRIBUTES_NODES))}, "attributes.l", "hold more than 1024"),
        ({"s": "x" * MAX_ATTRIBUTES_BYTES}, "attributes", "encode to"),
        ({"o": object()}, "attributes.o", "is not a JSON value (object)"),
        ({"t": (1, 2)}, "attributes.t", "is not a JSON value (tuple)"),
    ],
)
def test_attributes_rejected(attributes: dict[str, object], field: str, problem: str) -> None:
    with pytest.raises(InputError) as caught:
        check_attributes(attributes)
    assert caught.value.field == field
    assert caught.value.problem.startswith(problem)


# --- varbinds -----------------------------------------------------------------


def test_varbinds_normalized() -> None:
    got = parse_varbinds(
        [
            {"oid": ".1.3.6.1.2.1.2.2.1.1.2", "type": "INTEGER", "value": 2},
            {"oid": "IF-MIB::ifDescr.2", "value": "GigabitEthernet0/2"},
            {"oid": "SNMPv2-SMI::enterprises.9.1", "value": None},
            {"oid": "1.3.6.1.2.1.1.3.0", "type": "Timeticks", "value": 12.5},
        ]
    )
    assert got == [
        {"oid": "1.3.6.1.2.1.2.2.1.1.2", "type": "INTEGER", "value": "2"},
        {"oid": "IF-MIB::ifDescr.2", "type": None, "value": "GigabitEthernet0/2"},
        {"oid": "1.3.6.1.4.1.9.1", "type": None, "value": ""},
        {"oid": "1.3.6.1.2.1.1.3.0", "type": "Timeticks", "value": "12.5"},
    ]
    assert parse_varbinds(None) == []
    assert parse_varbinds([]) == []


@pytest.mark.parametrize(
    ("value", "field", "problem"),
    [
        ("1.3=x", "varbinds", "must be an array of varbinds or an object of OID: value, not str"),
        ({"1.3": [1]}, "varbinds['1.3']", "must be a string or a number, not array"),
        ({"IF MIB": 1}, "varbinds['IF MIB']", "must not contain whitespace"),
        ({f"1.{i}": 1 for i in range(MAX_VARBINDS + 1)}, "varbinds", "has 1025 entries"),
        ([["1.3"]], "varbinds[0]", "must be an [oid, value] pair, not 1 elements"),
        ([["1.3", "x", "y"]], "varbinds[0]", "must be an [oid, value] pair, not 3 elements"),
        ([[5, "x"]], "varbinds[0][0]", "is required (a non-empty string)"),
        ([["1.3", {"v": 1}]], "varbinds[0][1]", "must be a string or a number, not object"),
        ([{"oid": "1.3", "value": "x"}] * (MAX_VARBINDS + 1), "varbinds", "has 1025 entries"),
        (["1.3=x"], "varbinds[0]", "must be an object with oid and value, or an [oid, value]"),
        ([{"value": "x"}], "varbinds[0].oid", "is required"),
        ([{"oid": " ", "value": "x"}], "varbinds[0].oid", "is required"),
        ([{"oid": "IF MIB", "value": "x"}], "varbinds[0].oid", "must not contain whitespace"),
        ([{"oid": "1.3", "value": True}], "varbinds[0].value", "must be a string or a number"),
        ([{"oid": "1.3", "value": [1]}], "varbinds[0].value", "must be a string or a number"),
        ([{"oid": "1.3", "value": float("nan")}], "varbinds[0].value", "must be a string"),
        ([{"oid": "1.3", "value": 2**70}], "varbinds[0].value", "number is out of the 64-bit"),
        ([{"oid": "1.3", "value": "x" * 8193}], "varbinds[0].value", "is longer than 8192"),
        ([{"oid": "1.3", "value": "a\x00"}], "varbinds[0].value", "must not contain NUL"),
        ([{"oid": "1.3", "type": 4, "value": "x"}], "varbinds[0].type", "must be a string"),
        ([{"oid": "1.3", "type": "t" * 65, "value": "x"}], "varbinds[0].type", "is longer than"),
        ([{"oid": "1.3", "value": "x", "extra": 1}], "varbinds[0]", "unknown key 'extra'"),
    ],
)
def test_varbinds_rejected(value: object, field: str, problem: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_varbinds(value)
    assert caught.value.field == field
    assert caught.value.problem.startswith(problem)


@pytest.mark.parametrize(
    ("oid", "varbinds", "expected"),
    [
        ("1.3.6.1.6.3.1.1.5.1", [], "SNMP trap 1.3.6.1.6.3.1.1.5.1 (coldStart)"),
        (
            "1.3.6.1.6.3.1.1.5.3",
            [{"oid": "1.3.6.1.2.1.2.2.1.1.2", "type": None, "value": "2"}],
            "SNMP trap 1.3.6.1.6.3.1.1.5.3 (linkDown): 1.3.6.1.2.1.2.2.1.1.2=2",
        ),
        (
            "1.3.6.1.4.1.9.9.41.2.0.1",
            [
                {"oid": "1.1", "type": None, "value": "a"},
                {"oid": "1.2", "type": None, "value": "b"},
            ],
            "SNMP trap 1.3.6.1.4.1.9.9.41.2.0.1: 1.1=a, 1.2=b",
        ),
    ],
)
def test_trap_message(oid: str, varbinds: list[dict[str, str | None]], expected: str) -> None:
    assert trap_message(oid, varbinds) == expected


def test_trap_message_is_bounded() -> None:
    many = [{"oid": f"1.3.{i}", "type": None, "value": "v" * 8192} for i in range(1024)]
    text = trap_message("1.3.6", many)
    assert len(text) == 1024
    assert text.endswith("...")
