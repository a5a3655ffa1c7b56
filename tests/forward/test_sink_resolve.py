"""A resolve (a paired clear) reaches each vendor in the form that closes the open alert.

Same stand-in vendor server as the trigger tests: the assertions are on the
bytes that arrived. Every resolve must name the trigger's dedup key, or the
vendor would open a second alert instead of closing the first.
"""

from __future__ import annotations

import json
from datetime import timedelta

from functions.forward.sinks import alertmanager
from functions.forward.sinks.alertmanager import AlertmanagerSink
from functions.forward.sinks.http import HttpSession
from functions.forward.sinks.moogsoft import MoogsoftSink
from functions.forward.sinks.pagerduty import PagerDutySink
from functions.forward.sinks.servicenow import ServiceNowSink
from functions.forward.sinks.webhook import WebhookSink
from shared.models import Alert, Severity
from tests.support.vendor import EVENT_TIME, VendorServer, make_alert

KEY = "a1b2c3d4e5f60718293a4b5c6d7e8f90"


def trigger_and_resolve() -> tuple[Alert, Alert]:
    trigger = make_alert(Severity.ERROR)
    resolve = make_alert(Severity.ERROR, ce_id="evt-2").model_copy(update={"action": "resolve"})
    assert resolve.dedup_key == trigger.dedup_key and resolve.alert_id != trigger.alert_id
    return trigger, resolve


def test_default_action_is_trigger_and_old_payloads_still_parse() -> None:
    doc = make_alert().model_dump(mode="json")
    del doc["action"]  # what an alert stage before this field wrote
    assert Alert.model_validate(doc).action == "trigger"


def test_pagerduty_resolve_names_only_the_dedup_key(
    vendor: VendorServer, session: HttpSession
) -> None:
    _, resolve = trigger_and_resolve()
    vendor.reply(202, '{"status":"success"}')
    sink = PagerDutySink("pd", KEY, session=session, url=vendor.url + "/v2/enqueue", timeout=2)
    assert sink.send(resolve).outcome == "delivered"
    (req,) = vendor.requests
    assert req.json() == {
        "routing_key": KEY,
        "event_action": "resolve",
        "dedup_key": resolve.dedup_key,
    }


def test_moogsoft_resolve_is_severity_zero_with_the_same_dedupe_key(
    vendor: VendorServer, session: HttpSession
) -> None:
    trigger, resolve = trigger_and_resolve()
    sink = MoogsoftSink("moog", KEY, session=session, url=vendor.url + "/events", timeout=2)
    sink.send(trigger)
    sink.send(resolve)
    first, second = (r.json() for r in vendor.requests)
    assert first["severity"] == 4
    assert second["severity"] == 0
    assert second["dedupe_key"] == first["dedupe_key"]
    assert (second["source"], second["check"]) == (first["source"], first["check"])


def test_servicenow_resolve_is_severity_zero_and_closing(
    vendor: VendorServer, session: HttpSession
) -> None:
    trigger, resolve = trigger_and_resolve()
    sink = ServiceNowSink("snow", vendor.url, "u", "p4ssword", session=session, timeout=2)
    sink.send(trigger)
    sink.send(resolve)
    (first,) = vendor.requests[0].json()["records"]
    (second,) = vendor.requests[1].json()["records"]
    assert first["severity"] == "2" and "resolution_state" not in first
    assert second["severity"] == "0"
    assert second["resolution_state"] == "Closing"
    assert second["message_key"] == first["message_key"]
    assert (second["node"], second["type"]) == (first["node"], first["type"])


def test_alertmanager_resolve_ends_now_with_the_same_labels(
    vendor: VendorServer, session: HttpSession
) -> None:
    trigger, resolve = trigger_and_resolve()
    now = EVENT_TIME + timedelta(minutes=5)
    sink = AlertmanagerSink("am", vendor.url, session=session, timeout=2, clock=lambda: now)
    sink.send(trigger)
    sink.send(resolve)
    (first,) = vendor.requests[0].json()
    (second,) = vendor.requests[1].json()
    assert second["labels"] == first["labels"]  # Alertmanager identifies alerts by labels
    assert first["endsAt"] == alertmanager.rfc3339(now + alertmanager.DEFAULT_RESOLVE_AFTER)
    assert second["endsAt"] == alertmanager.rfc3339(now)


def test_alertmanager_resolve_never_ends_before_it_starts() -> None:
    _, resolve = trigger_and_resolve()
    early = EVENT_TIME - timedelta(minutes=1)  # a sender clock ahead of ours
    (body,) = alertmanager.payload(resolve, now=early)
    assert body["endsAt"] == body["startsAt"] == alertmanager.rfc3339(EVENT_TIME)


def test_webhook_receivers_see_the_action(vendor: VendorServer, session: HttpSession) -> None:
    _, resolve = trigger_and_resolve()
    WebhookSink("hook", vendor.url, session=session).send(resolve)
    assert json.loads(vendor.requests[0].body)["action"] == "resolve"
