"""The Alertmanager webhook (version 4): one event per alert."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from functions.ingest.alertmanager import DEFAULT_SOURCE, parse_alertmanager
from functions.ingest.errors import InputError
from shared.models import Event, Severity, event_id_for

RECEIVED = datetime(2025, 11, 11, 10, 5, 0, tzinfo=UTC)
SAMPLE: dict[str, Any] = json.loads(
    (Path(__file__).parent / "data" / "alertmanager_v4.json").read_text()
)


def sample() -> dict[str, Any]:
    return copy.deepcopy(SAMPLE)


def parse(body: object, **kwargs: Any) -> list[Event]:
    kwargs.setdefault("received_at", RECEIVED)
    return parse_alertmanager(body, **kwargs)


def one_alert(**changes: Any) -> dict[str, Any]:
    body = sample()
    alert = body["alerts"][0]
    for key, value in changes.items():
        if value is ...:
            alert.pop(key, None)
        else:
            alert[key] = value
    body["alerts"] = [alert]
    return body


def test_sample_notification() -> None:
    firing, paged, resolved = parse(sample(), correlation_id="c-1")
    source = "http://alertmanager.example.com:9093"

    assert firing.source == source
    assert firing.id == "a1b2c3d4e5f60718:firing:2025-11-11T10:00:00.123456+00:00"
    assert firing.event_id == event_id_for(source, firing.id)
    assert firing.hostname == "db-01.dc1.example.com"  # instance label, port stripped
    assert firing.message == "Node db-01.dc1.example.com is down"  # annotations.summary
    assert (firing.severity, firing.severity_name) == (Severity.CRITICAL, "critical")
    assert firing.time == datetime(2025, 11, 11, 10, 0, 0, 123456, tzinfo=UTC)
    assert not firing.time_estimated
    assert firing.source_type == "alertmanager"
    assert firing.correlation_id == "c-1"
    assert firing.attributes == {
        "status": "firing",
        "fingerprint": "a1b2c3d4e5f60718",
        "labels": SAMPLE["alerts"][0]["labels"],
        "annotations": SAMPLE["alerts"][0]["annotations"],
        "starts_at": "2025-11-11T10:00:00.1234567Z",
        "ends_at": "0001-01-01T00:00:00Z",
        "generator_url": SAMPLE["alerts"][0]["generatorURL"],
        "receiver": "mutt",
        "group_key": SAMPLE["groupKey"],
    }

    assert paged.hostname == "web-02.dc1.example.com"  # host label before instance
    assert paged.message == "node_exporter on web-02 has not answered for 5 minutes"
    assert paged.severity == Severity.ALERT  # "page"

    assert resolved.attributes["status"] == "resolved"
    assert resolved.hostname == "shop.example.com"  # blackbox target URL
    assert resolved.message == "ProbeFailed"  # no annotations: the alertname
    assert resolved.severity == Severity.WARNING
    assert resolved.time == datetime(2025, 11, 11, 9, 55, 0, 250000, tzinfo=UTC)  # endsAt
    assert resolved.id == "9988776655443322:resolved:2025-11-11T09:40:00+00:00"


def test_renotification_is_the_same_event_and_resolution_is_not() -> None:
    first = parse(sample())[0]
    again = parse(sample(), received_at=datetime(2025, 11, 11, 14, 0, tzinfo=UTC))[0]
    assert again.event_id == first.event_id
    body = sample()
    body["alerts"][0]["status"] = "resolved"
    body["alerts"][0]["endsAt"] = "2025-11-11T11:00:00Z"
    resolved = parse(body)[0]
    assert resolved.event_id != first.event_id
    assert resolved.time == datetime(2025, 11, 11, 11, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("labels", "hostname"),
    [
        ({"instance": "10.0.0.5:9100"}, "10.0.0.5"),
        ({"instance": "[2001:db8::1]:9100"}, "2001:db8::1"),
        ({"instance": "2001:db8::1"}, "2001:db8::1"),
        ({"instance": "http://Probe.Example.com:9115/probe?x=1"}, "probe.example.com"),
        ({"instance": "http://[::1"}, "alertmanager"),
        ({"instance": "host-a"}, "host-a"),
        ({"instance": "host-a:http"}, "host-a:http"),
        ({"hostname": "Host-B", "instance": "x:1"}, "host-b"),
        ({"host": "bad host", "instance": "good:1"}, "good"),
        ({"host": ""}, "alertmanager"),
        ({}, "alertmanager"),
    ],
)
def test_hostname_from_labels(labels: dict[str, str], hostname: str) -> None:
    event = parse(one_alert(labels={"alertname": "X", **labels}))[0]
    assert event.hostname == hostname


@pytest.mark.parametrize(
    ("severity", "expected"),
    [
        ("critical", Severity.CRITICAL),
        ("Critical", Severity.CRITICAL),
        ("page", Severity.ALERT),
        ("warning", Severity.WARNING),
        ("warn", Severity.WARNING),
        ("info", Severity.INFO),
        ("none", Severity.INFO),
        ("error", Severity.ERROR),
        ("high", Severity.CRITICAL),
        ("low", Severity.NOTICE),
        ("3", Severity.ERROR),
        ("emergency", Severity.EMERGENCY),
        ("something-else", Severity.WARNING),
        (..., Severity.WARNING),
    ],
)
def test_severity_label(severity: object, expected: Severity) -> None:
    labels = {"alertname": "X"} if severity is ... else {"alertname": "X", "severity": severity}
    assert parse(one_alert(labels=labels))[0].severity == expected


@pytest.mark.parametrize(
    ("labels", "annotations", "message"),
    [
        ({"alertname": "A"}, {"summary": "S", "description": "D"}, "S"),
        ({"alertname": "A"}, {"summary": " ", "description": "D"}, "D"),
        ({"alertname": "A"}, {}, "A"),
        ({}, {}, "Alertmanager alert a1b2c3d4e5f60718"),
    ],
)
def test_message(labels: dict[str, str], annotations: dict[str, str], message: str) -> None:
    assert parse(one_alert(labels=labels, annotations=annotations))[0].message == message


def test_missing_fingerprint_is_derived_from_labels() -> None:
    first = parse(one_alert(fingerprint=...))[0]
    again = parse(one_alert(fingerprint=...))[0]
    assert first.event_id == again.event_id
    assert len(str(first.attributes["fingerprint"])) == 16
    other = parse(one_alert(fingerprint=..., labels={"alertname": "Other"}))[0]
    assert other.event_id != first.event_id


def test_defaults() -> None:
    body = one_alert(status=..., startsAt=...)
    del body["externalURL"]
    event = parse(body)[0]
    assert event.source == DEFAULT_SOURCE
    assert event.attributes["status"] == "firing"  # from the notification's status
    assert event.time_estimated and event.time == RECEIVED
    assert event.id == "a1b2c3d4e5f60718:firing:"


def test_resolved_without_end_time_is_estimated() -> None:
    event = parse(one_alert(status="resolved"))[0]  # endsAt is Go's zero time
    assert event.time_estimated


def test_empty_alert_list_is_no_events() -> None:
    assert parse({"version": "4", "alerts": []}) == []


@pytest.mark.parametrize(
    ("body", "field", "problem", "index"),
    [
        ([], "body", "must be an Alertmanager webhook object, not array", None),
        ({"version": "3", "alerts": []}, "version", "unsupported webhook version '3'", None),
        ({"version": 4, "alerts": []}, "version", "unsupported webhook version 4", None),
        ({"version": "4"}, "alerts", "is required: an array of alerts, not null", None),
        ({"alerts": {"a": 1}}, "alerts", "is required: an array of alerts, not object", None),
        ({"alerts": [{}] * 3}, "status", "must be 'firing' or 'resolved', not None", 0),
        ({"alerts": [{"status": "firing"}, 7]}, "alerts", "each alert must be an object", 1),
        ({"alerts": [], "externalURL": 5}, "externalURL", "must be a string, not number", None),
    ],
)
def test_rejected(body: object, field: str, problem: str, index: int | None) -> None:
    with pytest.raises(InputError) as caught:
        parse(body)
    assert (caught.value.field, caught.value.index) == (field, index)
    assert caught.value.problem.startswith(problem)


@pytest.mark.parametrize(
    ("changes", "field", "problem"),
    [
        ({"status": "pending"}, "status", "must be 'firing' or 'resolved'"),
        ({"labels": ["a"]}, "labels", "must be an object of strings, not array"),
        ({"labels": {"severity": 2}}, "labels.severity", "must be a string, not number"),
        ({"annotations": {"summary": None}}, "annotations.summary", "must be a string, not null"),
        ({"annotations": {"summary": "x" * 70_000}}, "annotations.summary", "is longer than"),
        ({"fingerprint": 12}, "fingerprint", "must be a string, not number"),
        ({"fingerprint": "f" * 200}, "fingerprint", "is longer than 128"),
        ({"labels": {"alertname": "a\x00"}}, "labels.alertname", "must not contain NUL"),
        ({"labels": {"\ud800": "x"}}, "labels key", "is not valid Unicode"),
        ({"annotations": {"x": "y" * 20_000, "z": "y" * 20_000}}, "attributes", "encode to"),
    ],
)
def test_alert_rejected(changes: dict[str, Any], field: str, problem: str) -> None:
    body = sample()
    body["alerts"][1].update(changes)
    with pytest.raises(InputError) as caught:
        parse(body)
    assert (caught.value.field, caught.value.index) == (field, 1)
    assert caught.value.problem.startswith(problem)


def test_too_many_alerts() -> None:
    body = sample()
    with pytest.raises(InputError) as caught:
        parse(body, max_alerts=2)
    assert caught.value.to_dict() == {
        "field": "alerts",
        "error": "has 3 alerts, the limit per request is 2",
        "index": None,
    }
