"""The legacy webhook: body structure, field rules end to end, the reference events."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from functions.ingest.errors import InputError
from functions.ingest.fields import make_event
from functions.ingest.legacy import (
    item_id,
    legacy_items,
    parse_legacy,
    parse_legacy_event,
    parse_legacy_partial,
)
from shared.models import Event, Severity, event_id_for

DATA = Path(__file__).parent / "data"
RECEIVED = datetime(2025, 1, 20, 12, 0, 0, tzinfo=UTC)
SOURCE = "/api/v2/ingest"


def parse_one(obj: object, **kwargs: Any) -> Event:
    kwargs.setdefault("received_at", RECEIVED)
    return parse_legacy_event(obj, source=SOURCE, event_id="req-1:0", **kwargs)


def base(**fields: object) -> dict[str, object]:
    event: dict[str, object] = {
        "hostname": "core-router-01.dc1.example.com",
        "timestamp": "2025-01-15T14:30:22Z",
        "message": "%LINEPROTO-5-UPDOWN: Line protocol on Interface Gi0/0, changed state to down",
    }
    event.update(fields)
    return {key: value for key, value in event.items() if value is not ...}


# --- the reference data -------------------------------------------------------


def reference_events() -> list[dict[str, object]]:
    loaded: list[dict[str, object]] = json.loads(
        (DATA / "mutt-v25-test-syslog-events.json").read_text()
    )
    return loaded


def test_all_66_reference_events_parse() -> None:
    raw = reference_events()
    assert len(raw) == 66
    events = parse_legacy(raw, source=SOURCE, request_id="req-1", received_at=RECEIVED)
    assert len(events) == 66
    for original, event in zip(raw, events, strict=True):
        assert event.hostname == str(original["hostname"]).lower()
        assert event.message == original["message"]
        assert not event.time_estimated
        assert event.time == datetime.fromisoformat(str(original["timestamp"]))
        assert event.severity_name == str(original["syslog_severity"]).lower()
        assert event.trap_oid == original.get("trap_oid")
        assert event.source_type == original["source_type"]
        assert event.attributes == {}
        Event.model_validate(event.model_dump())  # what model_validate built is a valid model
    assert sum(1 for event in events if event.trap_oid) == 11
    assert len({event.event_id for event in events}) == 66


def test_reference_event_in_detail() -> None:
    event = parse_one(reference_events()[0], correlation_id="corr-9")
    assert event.model_dump(mode="json") == {
        "event_id": str(event_id_for(SOURCE, "req-1:0")),
        "source": SOURCE,
        "id": "req-1:0",
        "hostname": "core-router-01.dc1.example.com",
        "time": "2025-01-15T14:30:22Z",
        "time_estimated": False,
        "message": "%LINEPROTO-5-UPDOWN: Line protocol on Interface GigabitEthernet0/0/0, "
        "changed state to down",
        "severity": 5,
        "severity_name": "notice",
        "trap_oid": "1.3.6.1.4.1.9.2.2.1.1.0",
        "varbinds": [],
        "source_type": "cisco-ios",
        "attributes": {},
        "correlation_id": "corr-9",
        "received_at": "2025-01-20T12:00:00Z",
    }
    orjson.dumps(event.model_dump(mode="json"))


# --- body structure -----------------------------------------------------------


def test_items_object_and_array() -> None:
    one = base()
    assert legacy_items(one) == [one]
    assert legacy_items([one, one]) == [one, one]
    assert legacy_items([one] * 3, max_items=3) == [one] * 3


@pytest.mark.parametrize(
    ("body", "max_items", "problem", "index"),
    [
        ([], 10, "is an empty array: send at least one event", None),
        ([{}] * 4, 3, "has 4 events, the limit per request is 3", None),
        ("text", 10, "must be a JSON object or an array of objects, not string", None),
        (None, 10, "must be a JSON object or an array of objects, not null", None),
        (7, 10, "must be a JSON object or an array of objects, not number", None),
        ([{}, [1]], 10, "must be a JSON object, not array", 1),
        ([{}, {}, None], 10, "must be a JSON object, not null", 2),
    ],
)
def test_items_rejected(body: object, max_items: int, problem: str, index: int | None) -> None:
    with pytest.raises(InputError) as caught:
        legacy_items(body, max_items)
    assert caught.value.to_dict() == {"field": "body", "error": problem, "index": index}


def test_ids_are_request_id_and_position() -> None:
    events = parse_legacy([base(), base()], source=SOURCE, request_id="abc", received_at=RECEIVED)
    assert [event.id for event in events] == ["abc:0", "abc:1"]
    assert [event.event_id for event in events] == [
        event_id_for(SOURCE, "abc:0"),
        event_id_for(SOURCE, "abc:1"),
    ]
    assert item_id("abc", 5) == "abc:5"
    single = parse_legacy(base(), source=SOURCE, request_id="abc", received_at=RECEIVED)
    assert single[0].id == "abc:0"


def test_a_retried_request_has_the_same_event_ids() -> None:
    first = parse_legacy([base()], source=SOURCE, request_id="r", received_at=RECEIVED)
    again = parse_legacy([base()], source=SOURCE, request_id="r")
    assert first[0].event_id == again[0].event_id


def test_batch_error_names_the_item() -> None:
    with pytest.raises(InputError) as caught:
        parse_legacy([base(), base(hostname="")], source=SOURCE, request_id="r")
    assert caught.value.to_dict() == {"field": "hostname", "error": "must not be empty", "index": 1}


def test_single_object_error_has_no_index() -> None:
    with pytest.raises(InputError) as caught:
        parse_legacy(base(message=...), source=SOURCE, request_id="r")
    assert caught.value.to_dict() == {"field": "message", "error": "is required", "index": None}


def test_partial_keeps_the_good_items() -> None:
    body = [base(), base(hostname="a b"), base(message=""), base(hostname="Other")]
    events, errors = parse_legacy_partial(body, source=SOURCE, request_id="r")
    assert [event.hostname for event in events] == ["core-router-01.dc1.example.com", "other"]
    assert [event.id for event in events] == ["r:0", "r:3"]
    assert [(error.field, error.index) for error in errors] == [("hostname", 1), ("message", 2)]
    with pytest.raises(InputError):
        parse_legacy_partial([], source=SOURCE, request_id="r")


def test_non_object_item_at_event_level() -> None:
    with pytest.raises(InputError) as caught:
        parse_legacy_event([1], source=SOURCE, event_id="x", index=4)
    assert caught.value.to_dict() == {
        "field": "body",
        "error": "must be a JSON object, not array",
        "index": 4,
    }


# --- field rules, end to end --------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "check"),
    [
        ({"hostname": "  EDGE-FW-02.Example.com. "}, ("hostname", "edge-fw-02.example.com")),
        ({"syslog_severity": "Warning"}, ("severity", Severity.WARNING)),
        ({"syslog_severity": 3}, ("severity_name", "error")),
        ({"severity": "err"}, ("severity", Severity.ERROR)),  # rsyslog's field name
        ({"syslog_severity": None}, ("severity", None)),
        ({"trap_oid": ".1.3.6.1.4.1.9.9.41.2.0.1"}, ("trap_oid", "1.3.6.1.4.1.9.9.41.2.0.1")),
        ({"trap_oid": ""}, ("trap_oid", None)),
        ({"source_type": "cisco-asa"}, ("source_type", "cisco-asa")),
        ({"timestamp": 1736951422000}, ("time", datetime(2025, 1, 15, 14, 30, 22, tzinfo=UTC))),
        ({"timestamp": "Jan 15 14:30:22"}, ("time", datetime(2025, 1, 15, 14, 30, 22, tzinfo=UTC))),
        ({"timestamp": ..., "time": "2025-01-15T14:30:22Z"}, ("time_estimated", False)),
        ({"_correlation_id": "from-body"}, ("correlation_id", "from-body")),
    ],
)
def test_field_rule(fields: dict[str, object], check: tuple[str, object]) -> None:
    event = parse_one(base(**fields))
    assert getattr(event, check[0]) == check[1]


@pytest.mark.parametrize("timestamp", [..., None, "", "not a time", [1], {"t": 1}, True])
def test_bad_or_missing_time_is_estimated(timestamp: object) -> None:
    event = parse_one(base(timestamp=timestamp))
    assert event.time == RECEIVED
    assert event.time_estimated
    if timestamp in (..., None, ""):
        assert event.attributes == {}
    else:
        assert event.attributes["timestamp"] == timestamp  # kept for operators


def test_nan_timestamp_is_refused_as_attribute() -> None:
    # The time rule forgives it, but a NaN cannot be stored as an attribute either.
    with pytest.raises(InputError) as caught:
        parse_one(base(timestamp=float("nan")))
    assert caught.value.field == "attributes.timestamp"


def test_extra_fields_are_attributes() -> None:
    event = parse_one(
        base(facility="local7", program="sshd", pid=4242, tags=["a"], syslog_severity="Info")
    )
    assert event.attributes == {"facility": "local7", "program": "sshd", "pid": 4242, "tags": ["a"]}


def test_both_severity_fields() -> None:
    event = parse_one(base(syslog_severity="Error", severity="P1"))
    assert event.severity == Severity.ERROR
    assert event.attributes == {"severity": "P1"}


def test_caller_correlation_id_wins() -> None:
    event = parse_one(base(_correlation_id="body"), correlation_id="header")
    assert event.correlation_id == "header"
    assert "_correlation_id" not in event.attributes


def test_received_at_defaults_to_now() -> None:
    event = parse_legacy_event(base(), source=SOURCE, event_id="x")
    assert event.received_at.tzinfo is not None
    naive = parse_legacy_event(
        base(), source=SOURCE, event_id="x", received_at=datetime(2025, 1, 1)
    )
    assert naive.received_at == datetime(2025, 1, 1, tzinfo=UTC)


def test_legacy_trap_without_message_gets_one() -> None:
    event = parse_one(
        base(
            message=...,
            trap_oid="1.3.6.1.6.3.1.1.5.3",
            varbinds=[{"oid": "1.3.6.1.2.1.2.2.1.1.2", "value": 2}],
        )
    )
    assert event.message == "SNMP trap 1.3.6.1.6.3.1.1.5.3 (linkDown): 1.3.6.1.2.1.2.2.1.1.2=2"
    assert event.varbinds[0].value == "2"


@pytest.mark.parametrize(
    ("fields", "field", "problem"),
    [
        ({"hostname": ...}, "hostname", "is required"),
        ({"hostname": None}, "hostname", "is required"),
        ({"hostname": ""}, "hostname", "must not be empty"),
        ({"hostname": "two words"}, "hostname", "must not contain whitespace"),
        ({"message": ...}, "message", "is required"),
        ({"message": "   "}, "message", "must not be empty"),
        ({"message": 5}, "message", "must be a string, not number"),
        ({"message": "x" * 70_000}, "message", "is 70000 bytes"),
        ({"trap_oid": "SNMPv2-MIB::sysUpTime"}, "trap_oid", "'SNMPv2-MIB::sysUpTime' is not"),
        ({"trap_oid": 1.3}, "trap_oid", "must be a string"),
        ({"source_type": ["x"]}, "source_type", "must be a string, not array"),
        ({"_correlation_id": "c" * 129}, "_correlation_id", "is longer than 128 characters"),
        ({"varbinds": "x"}, "varbinds", "must be an array"),
        ({"extra": {"deep": float("inf")}}, "attributes.extra.deep", "number must be finite"),
    ],
)
def test_field_errors(fields: dict[str, object], field: str, problem: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_one(base(**fields))
    assert caught.value.field == field
    assert caught.value.problem.startswith(problem)


def test_header_correlation_id_is_checked() -> None:
    with pytest.raises(InputError) as caught:
        parse_one(base(), correlation_id="c" * 129)
    assert caught.value.field == "correlation_id"


def test_request_id_too_long() -> None:
    with pytest.raises(InputError) as caught:
        parse_legacy(base(), source=SOURCE, request_id="r" * 1100)
    assert caught.value.field == "id"


def test_a_model_validation_error_still_becomes_an_input_error() -> None:
    """The guard behind our own checks: pydantic's verdict is never a 500."""
    with pytest.raises(InputError) as caught:
        make_event({"event_id": "not-a-uuid"})
    assert caught.value.field == "event_id"
