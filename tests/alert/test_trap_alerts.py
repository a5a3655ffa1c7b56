"""Traps from HTTP ingest to the alert stage's decision: X.733 alarms raise what their
rules say, "cleared" resolves the alarm it names and never pages, an agent known only
by its address still raises, an unreadable severity gets the default, and summaries
say what the trap is about.

Every event goes the production way: POSTed to ingest (the functions-framework
app), read back from the events stream, and handed to the alert handler built as
``mutt worker alert`` builds it (rules from PostgreSQL, correlation on Redis).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pg8000.native
import pytest
import redis
from flask.testing import FlaskClient

from functions.alert.build import make_alert_handler
from functions.alert.catalog import insert_catalog, parse_catalog
from functions.alert.correlation.config import parse_correlation, store_doc
from functions.alert.handler import AlertHandler
from functions.ingest import app as ingest_app
from shared.broker.keys import CorrelationKeys, Keys
from shared.context import Context, set_context
from shared.dynconfig import DynamicConfig
from shared.envelope import FIELD, decode
from shared.models import TYPE_ALERT, TYPE_AUDIT, Alert
from tests.ingest.conftest import make_client

ALARM = "1.3.6.1.4.1.9999.1.0.1"  # a vendor's alarm notification: one OID, X.733 severity
PSU = "1.3.6.1.4.1.9999.2.1.0"
LINK_DOWN = "1.3.6.1.6.3.1.1.5.3"
UNKNOWN_TRAP = "1.3.6.1.4.1.8888.0.1"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
SNMP_TRAP_OID = "1.3.6.1.6.3.1.1.4.1.0"
IF_DESCR = "1.3.6.1.2.1.2.2.1.2.2"

RULES: dict[str, Any] = {
    "rules": [
        {
            "match_type": "oid_prefix",
            "trap_oid": "1.3.6.1.4.1.9999",
            "priority": 10,
            "prod_handling": "Page_and_ticket",
            "dev_handling": "Ticket_only",
            "team_assignment": "Power",
        },
        {
            "match_type": "oid_prefix",
            "trap_oid": LINK_DOWN,
            "priority": 20,
            "prod_handling": "Page_only",
            "dev_handling": "Ignore",
            "team_assignment": "Access",
        },
        {
            "match_type": "contains",
            "match_string": "power supply",
            "priority": 30,
            "prod_handling": "Ticket_only",
            "dev_handling": "Ignore",
            "team_assignment": "Power",
        },
    ],
}


@dataclass
class Pipeline:
    """Ingest over HTTP, the events stream, and the alert handler."""

    client: FlaskClient
    handler: AlertHandler
    r: redis.Redis
    keys: Keys
    rules: dict[str, int]  # rule id by trap OID
    seen: int = 0
    ids: Iterator[int] = field(default_factory=lambda: iter(range(1, 10**6)))

    def send(self, data: dict[str, Any], path: str = "legacy") -> tuple[list[Alert], list[Any]]:
        """POST one event; the alerts and audit records the alert stage makes of it."""
        if path == "legacy":
            resp = self.client.post(
                "/api/v2/ingest",
                data=orjson.dumps(data),
                headers={"content-type": "application/json", "Idempotency-Key": self.next_id()},
            )
        else:
            envelope = {
                "specversion": "1.0",
                "id": self.next_id(),
                "source": "/test/traps",
                "type": {"trap": "io.mutt.snmp.trap.v1", "syslog": "io.mutt.syslog.v1"}[path],
                "data": data,
            }
            resp = self.client.post(
                "/",
                data=orjson.dumps(envelope),
                headers={"content-type": "application/cloudevents+json"},
            )
        assert resp.status_code == 202, resp.json
        entries = self.r.xrange(self.keys.events)[self.seen :]
        self.seen += len(entries)
        outcomes = self.handler.handle([decode(fields[FIELD]) for _, fields in entries])
        assert all(o.status == "ok" for o in outcomes), [o.reason for o in outcomes]
        replies = [reply for o in outcomes for reply in o.replies]
        alerts = [Alert.model_validate(x.data) for x in replies if x["type"] == TYPE_ALERT]
        return alerts, [x.data for x in replies if x["type"] == TYPE_AUDIT]

    def next_id(self) -> str:
        return f"req-{next(self.ids)}"


@pytest.fixture
def pipeline(
    ctx: Context, pg: pg8000.native.Connection, r: redis.Redis, keys: Keys
) -> Iterator[Pipeline]:
    insert_catalog(pg, r, ctx.settings.namespace, parse_catalog(RULES))
    rules = {str(oid): int(i) for oid, i in pg.run("SELECT trap_oid, id FROM alert_rules")}
    yield Pipeline(make_client(ctx.settings), make_alert_handler(ctx), r, keys, rules)
    set_context(None)
    ingest_app._ingest = None
    pg.run("DELETE FROM alert_rules; DELETE FROM development_hosts; DELETE FROM device_teams")


def alarm(severity: str | None, **fields: Any) -> dict[str, Any]:
    """The vendor's alarm trap as an NMS forwards it: no hostname, the agent's address."""
    data: dict[str, Any] = {
        "source_ip": "10.20.0.7",
        "trap_oid": ALARM,
        "varbinds": [[SYS_UPTIME, "0:1:02:03.00"], [SNMP_TRAP_OID, ALARM], [PSU, "PSU 2 failed"]],
        **fields,
    }
    if severity is not None:
        data["severity"] = severity
    return data


# -- alarms ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["legacy", "trap"])
@pytest.mark.parametrize(
    ("word", "severity"),
    [
        ("Critical", "critical"),
        ("MAJOR", "error"),
        ("minor", "warning"),
        ("Warning", "warning"),
        ("indeterminate", "warning"),  # the sender did not know: the default
    ],
)
def test_an_x733_alarm_raises_what_its_rule_says(
    pipeline: Pipeline, path: str, word: str, severity: str
) -> None:
    (alert,), (record,) = pipeline.send(alarm(word), path)
    assert (alert.rule_id, alert.team, alert.handling) == (
        record["matched_rule_id"],
        "Power",
        "Page_and_ticket",
    )
    assert alert.severity_name == severity
    assert alert.action == "trigger"
    assert alert.event.hostname == "10.20.0.7"  # known only by its address, still raised
    assert alert.event.perceived_severity == word.lower()
    # readable: the trap and what it says; not its uptime, not its own OID again
    assert alert.summary == f"10.20.0.7: SNMP trap {ALARM}: {PSU}=PSU 2 failed"


@pytest.mark.parametrize("path", ["legacy", "trap"])
def test_a_trap_named_by_sysname_or_agent_address_raises(pipeline: Pipeline, path: str) -> None:
    link_down = {"trap_oid": LINK_DOWN, "varbinds": {IF_DESCR: "Gi0/2"}}
    (by_address,), _ = pipeline.send({**link_down, "agent_address": "10.0.0.5"}, path)
    assert (by_address.event.hostname, by_address.team) == ("10.0.0.5", "Access")
    assert by_address.summary == f"10.0.0.5: SNMP trap {LINK_DOWN} (linkDown): {IF_DESCR}=Gi0/2"
    named = {
        **link_down,
        "varbinds": {"1.3.6.1.2.1.1.5.0": "Access-SW-9", IF_DESCR: "Gi0/3"},
        "source_ip": "10.0.0.6",
    }
    (by_name,), _ = pipeline.send(named, path)
    assert (by_name.event.hostname, by_name.handling) == ("access-sw-9", "Page_only")


@pytest.mark.parametrize(("path", "key"), [("legacy", "syslog_severity"), ("trap", "severity")])
def test_an_unknown_severity_raises_with_the_default_and_keeps_the_word(
    pipeline: Pipeline, path: str, key: str
) -> None:
    (alert,), _ = pipeline.send({**alarm(None), key: "Sev-Orange"}, path)
    assert (alert.severity_name, alert.team) == ("warning", "Power")
    assert alert.event.severity is None
    assert alert.event.attributes[key] == "Sev-Orange"


# -- clears ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["legacy", "trap"])
def test_cleared_resolves_the_alarm_it_names(pipeline: Pipeline, path: str) -> None:
    (trigger,), _ = pipeline.send(alarm("Major"), path)
    (resolve,), (record,) = pipeline.send(alarm("Cleared"), path)
    assert resolve.action == "resolve"
    assert resolve.dedup_key == trigger.dedup_key
    # the trigger's routing, so the resolve reaches the sinks the trigger reached
    for name in ("rule_id", "team", "handling", "environment", "severity"):
        assert getattr(resolve, name) == getattr(trigger, name)
    assert resolve.event.perceived_severity == "cleared"
    assert (record["handling_decision"], record["correlation"]) == ("Clear", "resolved")
    assert record["forwarded"] is True
    assert record["alert_id"] == str(resolve.alert_id)
    # the alarm is closed: clearing it again resolves nothing
    assert pipeline.send(alarm("clear"), path)[0] == []


def test_cleared_with_nothing_open_never_pages(pipeline: Pipeline) -> None:
    alerts, (record,) = pipeline.send(alarm("Cleared"))
    assert alerts == []
    assert (record["handling_decision"], record["correlation"]) == ("Clear", "clear:nothing-open")
    assert record["forwarded"] is False


@pytest.mark.parametrize("path", ["legacy", "syslog"])
def test_a_cleared_syslog_event_ends_its_rules_alarm_too(pipeline: Pipeline, path: str) -> None:
    line = {"hostname": "pdu-4", "message": "power supply 1 failed"}
    (trigger,), _ = pipeline.send({**line, "syslog_severity": "Minor"}, path)
    assert (trigger.team, trigger.severity_name) == ("Power", "warning")
    (resolve,), _ = pipeline.send({**line, "syslog_severity": "CLEARED"}, path)
    assert (resolve.action, resolve.dedup_key) == ("resolve", trigger.dedup_key)


def test_a_syslog_warning_is_no_alarm_and_a_clear_does_not_resolve_it(
    pipeline: Pipeline,
) -> None:
    line = {"hostname": "pdu-4", "message": "power supply 1 failed"}
    (trigger,), _ = pipeline.send({**line, "syslog_severity": "warning"}, "syslog")
    assert trigger.event.perceived_severity is None  # syslog's word: no X.733 alarm
    alerts, (record,) = pipeline.send({**line, "syslog_severity": "cleared"}, "syslog")
    assert alerts == []  # nothing was kept open to resolve, and a clear never pages
    assert record["correlation"] == "clear:nothing-open"


def test_without_correlation_a_clear_still_never_pages(pipeline: Pipeline) -> None:
    own = pipeline.handler
    pipeline.handler = AlertHandler(own.cache, own.counter, own.dyn, "NETO")  # no Redis state
    (trigger,), _ = pipeline.send(alarm("major"))
    assert trigger.action == "trigger"
    alerts, (record,) = pipeline.send(alarm("cleared"))
    assert alerts == []
    assert (record["handling_decision"], record["correlation"]) == ("Clear", "clear:nothing-open")


def test_a_clear_no_rule_names_is_audited_and_never_counted_as_unhandled(
    pipeline: Pipeline, r: redis.Redis, keys: Keys
) -> None:
    DynamicConfig(r, keys.config).set("unhandled_threshold", "3")
    stray = {"source_ip": "10.9.9.9", "trap_oid": UNKNOWN_TRAP, "varbinds": {PSU: "x"}}
    for _ in range(5):
        alerts, (record,) = pipeline.send({**stray, "severity": "cleared"})
        assert alerts == []
        assert record["matched_rule_id"] is None
        assert (record["handling_decision"], record["correlation"]) == ("Clear", "clear:no-rule")
    # the same traps as alarms are unhandled: the third raises the meta-alert
    raised = [pipeline.send({**stray, "severity": "major"})[0] for _ in range(3)]
    assert [len(a) for a in raised] == [0, 0, 1]
    assert raised[2][0].rule_id == "unhandled"


def test_cleared_resolves_a_paired_rule_per_instance(pipeline: Pipeline, r: redis.Redis) -> None:
    pair = {"rule": pipeline.rules[LINK_DOWN], "clear": "changed state to up", "instance": "masked"}
    store_doc(r, CorrelationKeys(pipeline.keys.namespace), parse_correlation({"pairs": [pair]}))

    def port(n: int, severity: str) -> dict[str, Any]:
        return {
            "hostname": "sw-1",
            "trap_oid": LINK_DOWN,
            "severity": severity,
            "varbinds": {IF_DESCR: f"GigabitEthernet0/{n}"},
        }

    (one,), _ = pipeline.send(port(1, "major"), "trap")
    (two,), _ = pipeline.send(port(2, "major"), "trap")
    assert one.dedup_key != two.dedup_key  # one alarm per interface
    (resolve,), _ = pipeline.send(port(2, "cleared"), "trap")
    assert (resolve.action, resolve.dedup_key) == ("resolve", two.dedup_key)
    (resolve,), _ = pipeline.send(port(1, "cleared"), "trap")
    assert (resolve.action, resolve.dedup_key) == ("resolve", one.dedup_key)
