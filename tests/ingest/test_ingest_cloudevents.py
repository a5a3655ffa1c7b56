"""The data of inbound CloudEvents: the three MUTT types, and what is refused."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from functions.ingest.cloudevent_data import ACCEPTED_TYPES, parse_cloudevent_data
from functions.ingest.errors import InputError
from shared.models import TYPE_GENERIC, TYPE_SYSLOG, TYPE_TRAP, Event, Severity, event_id_for

RECEIVED = datetime(2025, 1, 20, 12, 0, 0, tzinfo=UTC)
# The CloudEvents conformance samples (Apache-2.0, see data/README.md).
CONFORMANCE = Path(__file__).parent / "data" / "conformance"
CONFORMANCE_FILES = {"v03.yaml", "v03_minimum.yaml", "v1.yaml", "v1_minimum.yaml"}


def parse(ce_type: object, data: object, **kwargs: Any) -> Event:
    kwargs.setdefault("source", "//rsyslog/host-a")
    kwargs.setdefault("event_id", "ev-1")
    kwargs.setdefault("received_at", RECEIVED)
    return parse_cloudevent_data(ce_type, data, **kwargs)


SYSLOG = {
    "hostname": "Core-Router-01",
    "timestamp": "2025-01-15T14:30:22.1234567Z",
    "message": "%SYS-5-CONFIG_I: Configured from console",
    "severity": "notice",
    "facility": "local7",
}
TRAP = {
    "hostname": "switch-07",
    "trap_oid": ".1.3.6.1.6.3.1.1.5.3",
    "varbinds": [
        {"oid": ".1.3.6.1.2.1.2.2.1.1.12", "type": "INTEGER", "value": 12},
        {"oid": "1.3.6.1.2.1.2.2.1.2.12", "type": "STRING", "value": "Gi0/12"},
    ],
}


def test_syslog() -> None:
    event = parse(TYPE_SYSLOG, SYSLOG, correlation_id="c-1")
    assert event.event_id == event_id_for("//rsyslog/host-a", "ev-1")
    assert (event.source, event.id) == ("//rsyslog/host-a", "ev-1")
    assert event.hostname == "core-router-01"
    assert event.time == datetime(2025, 1, 15, 14, 30, 22, 123456, tzinfo=UTC)
    assert (event.severity, event.severity_name) == (Severity.NOTICE, "notice")
    assert event.attributes == {"facility": "local7"}
    assert event.correlation_id == "c-1"


def test_trap_without_message() -> None:
    event = parse(TYPE_TRAP, TRAP)
    assert event.trap_oid == "1.3.6.1.6.3.1.1.5.3"
    assert [vb.oid for vb in event.varbinds] == ["1.3.6.1.2.1.2.2.1.1.12", "1.3.6.1.2.1.2.2.1.2.12"]
    assert event.message == (
        "SNMP trap 1.3.6.1.6.3.1.1.5.3 (linkDown): "
        "1.3.6.1.2.1.2.2.1.1.12=12, 1.3.6.1.2.1.2.2.1.2.12=Gi0/12"
    )
    assert event.severity is None
    assert event.time_estimated and event.time == RECEIVED


def test_trap_keeps_its_message_and_takes_the_agent_address() -> None:
    data = {"source_ip": "10.1.2.3", "trap_oid": "1.3.6.1.4.1.9.0.1", "message": "fan failed"}
    event = parse(TYPE_TRAP, data)
    assert (event.hostname, event.message) == ("10.1.2.3", "fan failed")
    assert event.attributes == {"source_ip": "10.1.2.3"}


def test_generic_event() -> None:
    event = parse(TYPE_GENERIC, {"hostname": "app-1", "message": "disk 91% full", "severity": 4})
    assert event.severity_name == "warning"


@pytest.mark.parametrize(
    ("data", "ce_time", "expected", "estimated"),
    [
        ({}, "2018-04-05T03:56:24Z", datetime(2018, 4, 5, 3, 56, 24, tzinfo=UTC), False),
        (
            {"time": "2020-01-01T00:00:00Z"},
            "2018-04-05T03:56:24Z",
            datetime(2020, 1, 1, tzinfo=UTC),
            False,
        ),
        (
            {"timestamp": ""},
            "2018-04-05T03:56:24Z",
            datetime(2018, 4, 5, 3, 56, 24, tzinfo=UTC),
            False,
        ),
        ({}, datetime(2019, 1, 1, tzinfo=UTC), datetime(2019, 1, 1, tzinfo=UTC), False),
        ({}, None, RECEIVED, True),
        ({}, "garbage", RECEIVED, True),
    ],
)
def test_time_precedence(
    data: dict[str, object], ce_time: object, expected: datetime, estimated: bool
) -> None:
    event = parse(TYPE_SYSLOG, {"hostname": "h", "message": "m", **data}, time=ce_time)
    assert (event.time, event.time_estimated) == (expected, estimated)


@pytest.mark.parametrize(
    ("ce_type", "data", "field", "problem"),
    [
        ("com.example.someevent", SYSLOG, "type", "unsupported CloudEvent type 'com.example"),
        (None, SYSLOG, "type", "unsupported CloudEvent type None"),
        (TYPE_SYSLOG, "Hello, World!", "data", "must be a JSON object (datacontenttype"),
        (TYPE_SYSLOG, b'{"hostname": "h"}', "data", "must be a JSON object (datacontenttype"),
        (TYPE_SYSLOG, ["Hello", "x"], "data", "must be a JSON object"),
        (TYPE_SYSLOG, None, "data", "must be a JSON object"),
        (TYPE_SYSLOG, {"msg": "Hello"}, "data.hostname", "is required"),
        (TYPE_SYSLOG, {"hostname": "h"}, "data.message", "is required"),
        (TYPE_GENERIC, {"hostname": "h", "message": ""}, "data.message", "must not be empty"),
        (TYPE_TRAP, {"hostname": "h", "message": "m"}, "data.trap_oid", "is required for an SNMP"),
        (TYPE_TRAP, {"hostname": "h", "trap_oid": "IF-MIB::x"}, "data.trap_oid", "'IF-MIB::x'"),
        (TYPE_TRAP, {**TRAP, "varbinds": [{"oid": "1.3"}, 5]}, "data.varbinds[1]", "must be an"),
    ],
)
def test_rejected(ce_type: object, data: object, field: str, problem: str) -> None:
    with pytest.raises(InputError) as caught:
        parse(ce_type, data)
    assert caught.value.field == field
    assert caught.value.problem.startswith(problem)
    assert caught.value.index is None


def test_unsupported_type_lists_the_accepted_ones() -> None:
    with pytest.raises(InputError) as caught:
        parse("dev.knative.sources.ping", {})
    for accepted in ACCEPTED_TYPES:
        assert accepted in caught.value.problem


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"source": ""}, "source"),
        ({"event_id": None}, "id"),
        ({"event_id": "x" * 2000}, "id"),
        ({"correlation_id": "c" * 200}, "correlation_id"),
    ],
)
def test_context_errors_are_not_data_errors(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InputError) as caught:
        parse(TYPE_SYSLOG, SYSLOG, **kwargs)
    assert caught.value.field == field


# --- the CloudEvents conformance samples -------------------------------------
# Their data is not MUTT-shaped: "Hello, World!" (text), "Hello, 🌎!" (JSON
# string), {"msg": ...}, ["Hello", "🌎!"], <msg>...</msg> (XML) and
# {"world": "hello"}; their types are io.cloudevents.minimum and
# com.example.someevent. Ingest refuses them all with a 400 naming the field.

CONFORMANCE_CASES: list[tuple[str, object, str]] = [
    ("io.cloudevents.minimum", b"Hello, World!\n", "type"),
    ("io.cloudevents.minimum", "Hello, 🌎!", "type"),
    ("io.cloudevents.minimum", {"msg": "Hello, 🌎!"}, "type"),
    ("io.cloudevents.minimum", ["Hello", "🌎!"], "type"),
    ("io.cloudevents.minimum", b"<msg>Hello, \xf0\x9f\x8c\x8e!</msg>\n", "type"),
    ("com.example.someevent", {"world": "hello"}, "type"),
    ("com.example.someevent", {"message": "Hello World!"}, "type"),  # the .feature files
]


@pytest.mark.parametrize(("ce_type", "data", "field"), CONFORMANCE_CASES)
def test_conformance_samples_are_refused(ce_type: str, data: object, field: str) -> None:
    with pytest.raises(InputError) as caught:
        parse(ce_type, data, time="2018-04-05T03:56:24Z")
    assert caught.value.field == field


@pytest.mark.parametrize(("ce_type", "data", "_field"), CONFORMANCE_CASES)
def test_conformance_data_under_a_mutt_type(ce_type: str, data: object, _field: str) -> None:
    """Even relabelled as a MUTT type, none of them is an event (no hostname/message)."""
    with pytest.raises(InputError) as caught:
        parse(TYPE_GENERIC, data)
    assert caught.value.field in {"data", "data.hostname"}


def conformance_documents() -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = []
    for path in sorted(CONFORMANCE.glob("*.yaml")):
        documents.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return documents


def test_conformance_files_match_the_cases_above() -> None:
    assert {p.name for p in CONFORMANCE.glob("*.yaml")} == CONFORMANCE_FILES
    documents = conformance_documents()
    # six minimal samples per version, one full event in v0.3, the same in two modes in v1.0
    assert len(documents) == 15
    assert {d["ContextAttributes"]["type"] for d in documents} == {
        ce_type for ce_type, _, _ in CONFORMANCE_CASES
    }
    for document in documents:
        context = document["ContextAttributes"]
        with pytest.raises(InputError) as caught:
            parse(
                context["type"], document["Data"], source=context["source"], event_id=context["id"]
            )
        assert caught.value.field == "type"
