"""Each sink sends exactly the fields and headers its vendor documents.

The vendors are stand-in servers on 127.0.0.1; the assertions are on the
bytes that arrived, not on the sink's internals.
"""

from __future__ import annotations

import base64
import io
import json

import pytest

from functions.forward.sinks import severity
from functions.forward.sinks.http import HttpSession
from functions.forward.sinks.moogsoft import MoogsoftSink
from functions.forward.sinks.pagerduty import PagerDutySink
from functions.forward.sinks.servicenow import ServiceNowSink
from functions.forward.sinks.stdout import StdoutSink
from shared.models import Severity
from tests.support.vendor import VendorServer, make_alert

KEY = "a1b2c3d4e5f60718293a4b5c6d7e8f90"


def test_moogsoft_event(vendor: VendorServer, session: HttpSession) -> None:
    alert = make_alert(Severity.ERROR)
    sink = MoogsoftSink(
        "moog", KEY, session=session, url=vendor.url + "/v1/integrations/events", timeout=2
    )
    result = sink.send(alert)

    assert result.outcome == "delivered" and result.status == 200
    (req,) = vendor.requests
    assert (req.method, req.path) == ("POST", "/v1/integrations/events")
    assert req.headers["apiKey"] == KEY
    assert "Authorization" not in req.headers
    assert req.headers["Content-Type"] == "application/json"
    assert req.json() == {
        "source": "core-router-01.dc1.example.com",
        "check": "mutt.rule.42",
        "class": "netops",
        "service": ["netops"],
        "description": alert.summary,
        "severity": 4,
        "time": 1736951422,
        "dedupe_key": alert.dedup_key,
        "manager": "MUTT",
        "tags": {
            "handling": "Page_and_ticket",
            "team": "netops",
            "environment": "prod",
            "rule_id": "42",
            "alert_id": str(alert.alert_id),
            "event_id": str(alert.event_id),
            "syslog_severity": "error",
            "trap_oid": "1.3.6.1.6.3.1.1.5.3",
            "source_type": "cisco-ios",
        },
    }


def test_moogsoft_bearer_auth(vendor: VendorServer, session: HttpSession) -> None:
    sink = MoogsoftSink("moog", KEY, session=session, url=vendor.url + "/events", auth="bearer")
    assert sink.send(make_alert()).outcome == "delivered"
    (req,) = vendor.requests
    assert req.headers["Authorization"] == f"Bearer {KEY}"
    assert "apiKey" not in req.headers


def test_pagerduty_trigger(vendor: VendorServer, session: HttpSession) -> None:
    vendor.reply(202, '{"status":"success","message":"Event processed","dedup_key":"x"}')
    alert = make_alert(Severity.CRITICAL)
    sink = PagerDutySink("pd", KEY, session=session, url=vendor.url + "/v2/enqueue", timeout=2)

    result = sink.send(alert)

    assert result.outcome == "delivered" and result.status == 202
    (req,) = vendor.requests
    assert (req.method, req.path) == ("POST", "/v2/enqueue")
    assert req.headers["Content-Type"] == "application/json"
    assert "Authorization" not in req.headers  # the routing key is the credential
    body = req.json()
    assert body["routing_key"] == KEY
    assert body["event_action"] == "trigger"
    assert body["dedup_key"] == alert.dedup_key
    assert body["client"] == "MUTT"
    payload = body["payload"]
    assert payload == {
        "summary": alert.summary,
        "source": "core-router-01.dc1.example.com",
        "severity": "critical",
        "timestamp": "2025-01-15T14:30:22.250000+00:00",
        "component": "cisco-ios",
        "group": "netops",
        "class": "mutt.rule.42",
        "custom_details": payload["custom_details"],
    }
    details = payload["custom_details"]
    assert details["handling"] == "Page_and_ticket"
    assert details["environment"] == "prod"
    assert details["rule_id"] == "42"
    assert details["alert_id"] == str(alert.alert_id)
    assert details["event"]["message"] == alert.event.message
    assert details["event"]["trap_oid"] == "1.3.6.1.6.3.1.1.5.3"
    assert details["event"]["varbinds"] == [{"oid": "1.3.6.1.2.1.2.2.1.1.1", "value": "1"}]


def test_pagerduty_summary_is_capped_at_1024(vendor: VendorServer, session: HttpSession) -> None:
    sink = PagerDutySink("pd", KEY, session=session, url=vendor.url)
    sink.send(make_alert(summary="x" * 4000))
    summary = vendor.requests[0].json()["payload"]["summary"]
    assert len(summary) == 1024 and summary.endswith("…")


def test_servicenow_record(vendor: VendorServer, session: HttpSession) -> None:
    vendor.reply(200, '{"result":{"Default Bulk Endpoint":"1 events were inserted"}}')
    alert = make_alert(Severity.WARNING)
    sink = ServiceNowSink(
        "snow", vendor.url + "/", "mutt.integration", "s3cret-pass", session=session, timeout=2
    )

    result = sink.send(alert)

    assert result.outcome == "delivered"
    (req,) = vendor.requests
    assert (req.method, req.path) == ("POST", "/api/global/em/jsonv2")
    expected_auth = base64.b64encode(b"mutt.integration:s3cret-pass").decode()
    assert req.headers["Authorization"] == f"Basic {expected_auth}"
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["Accept"] == "application/json"
    (record,) = req.json()["records"]
    info = json.loads(record.pop("additional_info"))  # documented as a JSON *string*
    assert record == {
        "source": "MUTT",
        "event_class": "MUTT",
        "node": "core-router-01.dc1.example.com",
        "resource": "cisco-ios",
        "type": "mutt.rule.42",
        "severity": "3",
        "description": alert.summary,
        "message_key": alert.dedup_key,
        "time_of_event": "2025-01-15 14:30:22",
    }
    assert info["handling"] == "Page_and_ticket"
    assert info["team"] == "netops"
    assert info["environment"] == "prod"
    assert info["alert_id"] == str(alert.alert_id)
    assert info["syslog_severity"] == "warning"
    assert info["event"]["hostname"] == "core-router-01.dc1.example.com"


def test_unhandled_alert_names_its_rule(vendor: VendorServer, session: HttpSession) -> None:
    sink = PagerDutySink("pd", KEY, session=session, url=vendor.url)
    sink.send(make_alert(rule_id="unhandled", summary="   "))
    payload = vendor.requests[0].json()["payload"]
    assert payload["class"] == "mutt.rule.unhandled"
    assert payload["summary"].startswith("%LINEPROTO-5-UPDOWN")  # never empty


@pytest.mark.parametrize(
    ("level", "moog", "snow", "pd"),
    [
        (Severity.EMERGENCY, 5, "1", "critical"),
        (Severity.ALERT, 5, "1", "critical"),
        (Severity.CRITICAL, 5, "1", "critical"),
        (Severity.ERROR, 4, "2", "error"),
        (Severity.WARNING, 3, "3", "warning"),
        (Severity.NOTICE, 2, "4", "info"),
        (Severity.INFO, 2, "4", "info"),
        (Severity.DEBUG, 2, "4", "info"),
    ],
)
def test_severity_maps(level: Severity, moog: int, snow: str, pd: str) -> None:
    assert severity.moogsoft(level) == moog
    assert severity.servicenow(level) == snow
    assert severity.pagerduty(level) == pd
    assert severity.alertmanager(level) == pd


def test_stdout_sink_writes_one_json_line() -> None:
    out = io.StringIO()
    alert = make_alert()
    sink = StdoutSink("local", stream=out)
    assert sink.send(alert).outcome == "delivered"
    assert sink.health()
    (line,) = out.getvalue().splitlines()
    doc = json.loads(line)
    assert doc["sink"] == "local"
    assert doc["alert"]["alert_id"] == str(alert.alert_id)
    out.close()
    assert not sink.health()
    assert sink.send(alert).outcome == "retry"


def test_stdout_sink_defaults_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    StdoutSink().send(make_alert())
    assert json.loads(capsys.readouterr().out)["sink"] == "stdout"
