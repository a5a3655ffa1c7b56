"""Alertmanager resolutions through the real alert handler: they resolve, they never page.

Events are what ingest's Alertmanager route makes of a webhook notification
(``parse_alertmanager``, the edge's own parser), so the fields the alert stage
keys on are the ones a real notification carries.
"""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pg8000.native
import pytest
import redis
import yaml
from cloudevents.http import CloudEvent
from prometheus_client import REGISTRY

from functions.alert.cache import RuleCache
from functions.alert.handler import AlertHandler
from functions.alert.unhandled import UnhandledCounter
from functions.audit.writer import row_from_record, write_rows
from functions.forward.sinks.alertmanager import rfc3339
from functions.ingest.alertmanager import parse_alertmanager
from shared.config import Settings
from shared.db.connection import connect_pg
from shared.dynconfig import DynamicConfig
from shared.envelope import make_event
from shared.models import TYPE_ACCEPTED, Alert, Handling
from tests.alert.correlation.conftest import RULES, Stage, alerts, records

FP = "4a5b6c7d8e9f0a1b"
A, B = "aaaa000000000001", "bbbb000000000002"
STARTS = "2025-11-11T09:00:00Z"
SUMMARY = "Interface Gi0/5 changed state to down"  # matches the NetOps Page_and_ticket rule
ROUTING = ("rule_id", "team", "handling", "environment", "severity", "dedup_key")


def notification(
    status: str,
    *,
    fingerprint: str = FP,
    starts: str = STARTS,
    ends: str = "2025-11-11T09:30:00Z",
    summary: str = SUMMARY,
    external_url: str = "http://am-1.example.org:9093",
    source_type: str | None = None,
) -> CloudEvent:
    """One accepted event, as ingest makes it from an Alertmanager webhook."""
    alert = {
        "status": status,
        "labels": {"alertname": "LinkDown", "instance": "core-1:9100", "severity": "critical"},
        "annotations": {"summary": summary},
        "startsAt": starts,
        "endsAt": ends if status == "resolved" else "0001-01-01T00:00:00Z",
        "fingerprint": fingerprint,
    }
    body = {"version": "4", "status": status, "externalURL": external_url, "alerts": [alert]}
    (event,) = parse_alertmanager(body)
    if source_type is not None:
        event = event.model_copy(update={"source_type": source_type})
    return make_event(TYPE_ACCEPTED, "/mutt/ingest", event, id=str(event.event_id))


def resolutions(outcome: str) -> float:
    labels = {"outcome": outcome}
    return REGISTRY.get_sample_value("mutt_alertmanager_resolutions_total", labels) or 0.0


def routing(alert: Alert) -> list[Any]:
    return [getattr(alert, name) for name in ROUTING]


def test_resolution_resolves_the_alert_its_firing_raised(stage: Stage) -> None:
    rule = stage.rules["changed state to down"]
    (trigger,) = alerts(stage.send(notification("firing")))
    assert trigger.action == "trigger"
    assert trigger.dedup_key == f"mutt:am:{FP}"  # Alertmanager's identity, not rule + host
    assert (trigger.rule_id, trigger.handling) == (rule, Handling.PAGE_AND_TICKET)

    before = resolutions("resolved")
    outcomes = stage.send(notification("resolved"))
    (resolve,) = alerts(outcomes)  # the rule matches the resolution too: still no trigger
    assert resolve.action == "resolve"
    assert routing(resolve) == routing(trigger)
    assert resolve.event.attributes["status"] == "resolved"
    (record,) = records(outcomes)
    assert record["handling_decision"] == "Clear"
    assert record["matched_rule_id"] == rule
    assert (record["forwarded"], record["correlation"]) == (True, "resolved")
    assert record["alert_id"] == str(resolve.alert_id)
    assert resolutions("resolved") == before + 1


def test_resolution_with_nothing_open_pages_nobody(
    stage: Stage, caplog: pytest.LogCaptureFixture
) -> None:
    before = resolutions("nothing_open")
    with caplog.at_level(logging.INFO, "functions.alert.correlation.correlator"):
        outcomes = stage.send(notification("resolved"))
    assert alerts(outcomes) == []
    (record,) = records(outcomes)
    assert record["handling_decision"] == "Clear"
    assert (record["forwarded"], record["correlation"]) == (False, "clear:nothing-open")
    assert resolutions("nothing_open") == before + 1
    assert any(f"resolution of {FP} dropped" in m for m in caplog.messages)


def test_resolution_resolves_when_no_rule_matches_it_any_more(stage: Stage) -> None:
    (trigger,) = alerts(stage.send(notification("firing")))
    # the annotation changed (templated values do): no rule matches the resolution
    outcomes = stage.send(notification("resolved", summary="all good again"))
    (resolve,) = alerts(outcomes)
    assert routing(resolve) == routing(trigger)
    (record,) = records(outcomes)
    assert (record["matched_rule_id"], record["team"]) == (trigger.rule_id, "NetOps")
    assert record["forwarded"] is True


def test_each_alertmanager_alert_is_resolved_on_its_own(stage: Stage) -> None:
    (a,) = alerts(stage.send(notification("firing", fingerprint=A)))
    (b,) = alerts(stage.send(notification("firing", fingerprint=B)))
    assert a.dedup_key != b.dedup_key  # same host and rule: still two alerts
    (resolve,) = alerts(stage.send(notification("resolved", fingerprint=B)))
    assert resolve.dedup_key == b.dedup_key
    # the same resolution from the cluster's other Alertmanager: nothing left to resolve
    peer = "http://am-2.example.org:9093"
    assert alerts(stage.send(notification("resolved", fingerprint=B, external_url=peer))) == []
    (resolve_a,) = alerts(stage.send(notification("resolved", fingerprint=A)))
    assert resolve_a.dedup_key == a.dedup_key


def test_dedup_window_never_swallows_the_resolution(stage: Stage) -> None:
    stage.set(alert_dedup_seconds=900)
    (trigger,) = alerts(stage.send(notification("firing")))
    # the same alert from the cluster's other Alertmanager: another event, a repeat
    outcomes = stage.send(notification("firing", external_url="http://am-2.example.org:9093"))
    assert alerts(outcomes) == []
    assert records(outcomes)[0]["correlation"] == "deduplicated"
    stage.clock.advance(1)
    (resolve,) = alerts(stage.send(notification("resolved")))
    assert (resolve.action, resolve.dedup_key) == ("resolve", trigger.dedup_key)
    stage.clock.advance(1)
    (again,) = alerts(stage.send(notification("firing", starts="2025-11-11T10:00:00Z")))
    assert (again.action, again.dedup_key) == ("trigger", trigger.dedup_key)  # a new problem


def test_firing_and_resolution_in_one_batch_keep_their_order(stage: Stage) -> None:
    trigger, resolve = alerts(stage.send(notification("firing"), notification("resolved")))
    assert [trigger.action, resolve.action] == ["trigger", "resolve"]
    assert trigger.dedup_key == resolve.dedup_key


def test_redelivered_resolution_gives_the_same_resolve(stage: Stage) -> None:
    stage.send(notification("firing"))
    resolution = notification("resolved")
    (first,) = alerts(stage.send(resolution))
    (again,) = alerts(stage.send(resolution))  # a crash before the acknowledgement
    assert again.alert_id == first.alert_id  # forward delivers an alert id once


def test_flapping_alertmanager_alert_pages_once(stage: Stage) -> None:
    stage.set(flap_threshold=2)
    before = resolutions("flapping")
    got = []
    for n, status in enumerate(["firing", "resolved", "firing", "resolved"]):
        starts = f"2025-11-11T{10 + n // 2:02d}:00:00Z"
        got += alerts(stage.send(notification(status, starts=starts)))
        stage.clock.advance(1)
    assert [(a.action, a.dedup_key) for a in got] == [
        ("trigger", f"mutt:am:{FP}"),
        ("resolve", f"mutt:am:{FP}"),
        ("trigger", f"mutt:am:{FP}:flapping"),
    ]
    assert resolutions("flapping") == before + 1


def test_other_sources_saying_resolved_are_not_resolutions(stage: Stage) -> None:
    (alert,) = alerts(stage.send(notification("resolved", source_type="syslog")))
    assert alert.action == "trigger"
    assert alert.dedup_key == f"mutt:{stage.rules['changed state to down']}:core-1"


def test_without_redis_a_resolution_still_never_pages(
    settings: Settings, r: redis.Redis, rule_ids: dict[str, int]
) -> None:
    url = settings.database_url or ""
    cache = RuleCache(lambda: connect_pg(url, settings.database_schema), r, settings.namespace)
    cache.warm()
    dyn = DynamicConfig(r, f"{settings.namespace}:config")
    handler = AlertHandler(cache, UnhandledCounter(r, settings.namespace), dyn, "NETO")
    (trigger,) = alerts(handler.handle([notification("firing")]))
    assert trigger.dedup_key == f"mutt:am:{FP}"
    outcomes = handler.handle([notification("resolved")])
    assert alerts(outcomes) == []
    assert records(outcomes)[0]["correlation"] == "clear:nothing-open"


@pytest.mark.parametrize("against", ["current", "recorded"])
def test_backtests_know_a_resolution_raises_no_alert(
    stage: Stage, mutt: Any, pg: pg8000.native.Connection, tmp_path: Path, against: str
) -> None:
    at = datetime(1990, 1, 1, tzinfo=UTC) + timedelta(hours=random.randrange(300_000))
    starts, ends = rfc3339(at), rfc3339(at + timedelta(minutes=10))  # a private past hour
    outcomes = stage.send(notification("firing", starts=starts))
    outcomes += stage.send(notification("resolved", starts=starts, ends=ends))
    assert write_rows(pg, [row_from_record(r) for r in records(outcomes)]) == 2
    rules = [{"id": stage.rules[r["match_string"]], **r} for r in RULES["rules"]]
    rules[0]["team_assignment"] = "Transport"  # the rule matching both notifications
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({**RULES, "rules": rules}))
    since, until = (at - timedelta(minutes=1)).isoformat(), (at + timedelta(hours=1)).isoformat()
    ran = mutt(
        "rules", "backtest", str(path), "--since", since, "--until", until,
        "--json", "--against", against,
    )  # fmt: skip
    assert ran.code == 0, ran.err
    summary = orjson.loads(ran.out.splitlines()[0])["summary"]
    assert summary["events"] == 2
    assert (summary["team"], summary["new_alert"], summary["unchanged"]) == (1, 0, 1)
