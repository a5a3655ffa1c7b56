"""An Alertmanager alert that fires then resolves, end to end with real Alertmanagers.

A real ``prometheus-alertmanager`` (the *source*) notifies MUTT's real
ingest (``/api/v2/alertmanager`` over HTTP) of an alert posted to its API,
first firing, then resolved (posted again with ``endsAt`` now). The alert
and forward stages run on what ingest published, delivering to PagerDuty,
Moogsoft and ServiceNow stand-ins, a webhook, the file sink and a second
real Alertmanager (the *sink*), which itself notifies a recorder with
``send_resolved``. Every sink
must see one trigger then one resolve of the same alert: the source
Alertmanager's fingerprint. ``.ci/install-system-packages.sh`` installs the
binary; without it the test is skipped with that instruction.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

import orjson
import pg8000.native
import pytest
import redis
import requests
from cloudevents.http import CloudEvent

from functions.alert.build import make_alert_handler
from functions.alert.catalog import insert_catalog, parse_catalog
from functions.forward.delivery import Deliverer
from functions.forward.routing import Router
from functions.forward.sinks.alertmanager import AlertmanagerSink, rfc3339
from functions.forward.sinks.base import Sink
from functions.forward.sinks.file import FileSink
from functions.forward.sinks.http import HttpSession
from functions.forward.sinks.moogsoft import MoogsoftSink
from functions.forward.sinks.pagerduty import PagerDutySink
from functions.forward.sinks.servicenow import ServiceNowSink
from functions.forward.sinks.webhook import WebhookSink
from shared.broker.keys import Keys
from shared.config import Settings
from shared.context import Context
from shared.envelope import FIELD, decode
from shared.models import TYPE_ALERT, Alert, utcnow
from tests.support.processes import free_port, stop, wait_http
from tests.support.sources import ingest_server, wait_for
from tests.support.vendor import Recorded, VendorServer

pytestmark = pytest.mark.slow

BINARY = Path("/usr/bin/prometheus-alertmanager")
SNOW = "/snow/api/global/em/jsonv2"
ROUTING_KEY = "e93facc04764012d7bfb002500d5d1a6"
TOKEN = "MuttResolveE2E"
RULES = {
    "rules": [
        {
            "match_type": "contains",
            "match_string": TOKEN,
            "prod_handling": "Page_and_ticket",
            "dev_handling": "Ticket_only",
            "team_assignment": "NetOps",
        }
    ]
}
NOTIFY = """\
route:
  receiver: out
  group_by: [alertname, instance]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: out
    webhook_configs:
      - url: {url}
        send_resolved: true
"""


@contextmanager
def alertmanager(work: Path, notify_url: str) -> Iterator[str]:
    """A real Alertmanager on a free port (no gossip) notifying ``notify_url``."""
    if not BINARY.exists():
        pytest.skip(f"{BINARY} is absent: run .ci/install-system-packages.sh")
    work.mkdir()
    (work / "alertmanager.yml").write_text(NOTIFY.format(url=notify_url))
    port = free_port()
    proc = subprocess.Popen(
        [
            str(BINARY),
            f"--config.file={work / 'alertmanager.yml'}",
            f"--storage.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/-/ready", proc, timeout=15)
        yield url
    finally:
        stop(proc, timeout=5)


class Stages:
    """The alert and forward stages, run on what ingest publishes."""

    def __init__(self, ctx: Context, r: redis.Redis, keys: Keys, sinks: dict[str, Sink]) -> None:
        self.r = r
        self.keys = keys
        self.alert = make_alert_handler(ctx)
        self.forward = Deliverer(r, keys, sinks, Router([], list(sinks)), ctx.dynamic)
        self.after = "-"

    def _published(self) -> list[tuple[str, CloudEvent]]:
        """What ingest published since the last run: (entry id, event)."""
        start = "-" if self.after == "-" else f"({self.after}"
        found = self.r.xrange(self.keys.events, start)
        entries = cast(list[tuple[bytes, dict[bytes, bytes]]], found)
        return [(entry_id.decode(), decode(fields[FIELD])) for entry_id, fields in entries]

    def run(self, status: str) -> list[Alert]:
        """Wait for ingest to publish a ``status`` notification, then alert and forward it."""
        wait_for(
            lambda: [ce.data for _, ce in self._published()],
            lambda data: data["attributes"]["status"] == status,
        )
        published = self._published()
        self.after = published[-1][0]
        outcomes = self.alert.handle([ce for _, ce in published])
        assert all(o.status == "ok" for o in outcomes), [o.reason for o in outcomes]
        raised = [reply for o in outcomes for reply in o.replies if reply["type"] == TYPE_ALERT]
        delivered = self.forward.handle(raised)
        assert [(o.status, list(o.later)) for o in delivered] == [("ok", [])] * len(raised)
        return [Alert.model_validate(ce.data) for ce in raised]


def notifications(vendor: VendorServer, path: str) -> list[Recorded]:
    return [req for req in vendor.requests if req.path == path]


def active_alerts(url: str) -> list[dict[str, Any]]:
    """The alerts an Alertmanager lists (active ones: resolved alerts are not listed)."""
    response = requests.get(url + "/api/v2/alerts", timeout=5)
    response.raise_for_status()
    return cast(list[dict[str, Any]], response.json())


@pytest.fixture
def rules(settings: Settings, pg: pg8000.native.Connection, r: redis.Redis) -> Iterator[None]:
    insert_catalog(pg, r, settings.namespace, parse_catalog(RULES))
    yield
    pg.run("DELETE FROM alert_rules; DELETE FROM development_hosts; DELETE FROM device_teams")


@pytest.mark.usefixtures("rules")
def test_firing_then_resolved_is_a_trigger_then_a_resolve_of_the_same_alert(
    ctx: Context, r: redis.Redis, keys: Keys, vendor: VendorServer, tmp_path: Path
) -> None:
    with (
        HttpSession() as session,
        ingest_server(ctx.settings) as ingest,
        alertmanager(tmp_path / "sink", vendor.url + "/am-sink") as sink_url,
        alertmanager(tmp_path / "source", ingest + "api/v2/alertmanager") as source_url,
    ):
        sinks: dict[str, Sink] = {
            "pagerduty": PagerDutySink(
                "pagerduty", ROUTING_KEY, session=session, url=vendor.url + "/v2/enqueue"
            ),
            "moogsoft": MoogsoftSink("moogsoft", "k", session=session, url=vendor.url + "/moog"),
            "servicenow": ServiceNowSink(
                "servicenow", vendor.url + "/snow", "mutt", "s3cret", session=session
            ),
            "hook": WebhookSink("hook", vendor.url + "/hook", session=session),
            "file": FileSink(tmp_path / "alerts.jsonl"),
            "am": AlertmanagerSink(
                "am", sink_url, session=session, resolve_after=timedelta(hours=1)
            ),
        }
        stages = Stages(ctx, r, keys, sinks)
        started = utcnow() - timedelta(seconds=5)
        alert = {
            "labels": {
                "alertname": TOKEN,
                "instance": "core-router-01.dc1.example.com:9100",
                "severity": "critical",
            },
            "annotations": {"summary": f"{TOKEN}: Interface Gi0/5 down"},
            "startsAt": rfc3339(started),
        }
        requests.post(source_url + "/api/v2/alerts", json=[alert], timeout=5).raise_for_status()
        (fingerprint,) = [a["fingerprint"] for a in active_alerts(source_url)]
        key = f"mutt:am:{fingerprint}"  # the source Alertmanager's own identity of the alert

        (trigger,) = stages.run("firing")
        assert (trigger.action, trigger.dedup_key) == ("trigger", key)
        (am_firing,) = wait_for(
            lambda: [n.json() for n in notifications(vendor, "/am-sink")],
            lambda n: n["status"] == "firing",
        )
        (shown,) = active_alerts(sink_url)
        assert shown["labels"]["mutt_dedup_key"] == key
        assert shown["status"]["state"] == "active"

        # The alert stops firing: Alertmanager notifies its resolution.
        alert["endsAt"] = rfc3339(utcnow())
        requests.post(source_url + "/api/v2/alerts", json=[alert], timeout=5).raise_for_status()
        (resolve,) = stages.run("resolved")
        assert (resolve.action, resolve.dedup_key) == ("resolve", key)

        # PagerDuty: the trigger's dedup_key, then a resolve of it.
        first, second = (n.json() for n in notifications(vendor, "/v2/enqueue"))
        assert (first["event_action"], first["dedup_key"]) == ("trigger", key)
        assert second == {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": key}
        # Moogsoft: the same dedupe_key, cleared (severity 0).
        first, second = (n.json() for n in notifications(vendor, "/moog"))
        assert (first["dedupe_key"], first["severity"]) == (key, 5)
        assert (second["dedupe_key"], second["severity"]) == (key, 0)
        # ServiceNow: the same message_key, cleared and closing.
        first, second = (n.json()["records"][0] for n in notifications(vendor, SNOW))
        assert (first["message_key"], first["severity"]) == (key, "1")
        assert "resolution_state" not in first
        assert (second["message_key"], second["severity"]) == (key, "0")
        assert second["resolution_state"] == "Closing"
        # Webhook and file sink: the alert JSON, with its action.
        hooked = [orjson.loads(n.body) for n in notifications(vendor, "/hook")]
        assert [(h["action"], h["dedup_key"]) for h in hooked] == [
            ("trigger", key),
            ("resolve", key),
        ]
        lines = (tmp_path / "alerts.jsonl").read_bytes().splitlines()
        written = [orjson.loads(line)["alert"] for line in lines]
        assert [(w["action"], w["dedup_key"]) for w in written] == [
            ("trigger", key),
            ("resolve", key),
        ]
        # The sink Alertmanager: the same alert (labels) ended, and it says so downstream.
        (am_resolved,) = wait_for(
            lambda: [n.json() for n in notifications(vendor, "/am-sink")],
            lambda n: n["status"] == "resolved",
        )
        (ended,) = am_resolved["alerts"]
        assert ended["status"] == "resolved"
        assert ended["labels"] == am_firing["alerts"][0]["labels"]
        assert ended["fingerprint"] == am_firing["alerts"][0]["fingerprint"]
        ends = datetime.fromisoformat(ended["endsAt"].replace("Z", "+00:00"))
        assert started <= ends <= utcnow()  # MUTT's endsAt = now ended it (not resolve_after)
        assert active_alerts(sink_url) == []
