"""The Alertmanager sink against a real Prometheus Alertmanager.

The test starts the Debian binary on a free 127.0.0.1 port (no gossip,
storage in tmp_path), posts through the sink and reads the alerts back
through ``GET /api/v2/alerts``. ``.ci/install-system-packages.sh`` installs
the binary; without it the test is skipped with that instruction.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from functions.forward.sinks.alertmanager import AlertmanagerSink
from functions.forward.sinks.http import HttpSession
from shared.models import Severity, utcnow
from tests.support.processes import free_port, stop, wait_http
from tests.support.vendor import make_alert

BINARY = Path("/usr/bin/prometheus-alertmanager")
CONFIG = """\
route:
  receiver: blackhole
receivers:
  - name: blackhole
"""


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    if not BINARY.exists():
        pytest.skip(f"{BINARY} is absent: run .ci/install-system-packages.sh")
    (tmp_path / "alertmanager.yml").write_text(CONFIG)
    port = free_port()
    proc = subprocess.Popen(
        [
            str(BINARY),
            f"--config.file={tmp_path / 'alertmanager.yml'}",
            f"--storage.path={tmp_path / 'data'}",
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
        yield url, proc
    finally:
        stop(proc, timeout=5)


def alerts(url: str) -> list[dict[str, Any]]:
    response = requests.get(url + "/api/v2/alerts", timeout=5)
    response.raise_for_status()
    return sorted(response.json(), key=lambda a: a["labels"]["mutt_dedup_key"])


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_alert_round_trips_through_alertmanager(
    alertmanager: tuple[str, subprocess.Popen[bytes]],
) -> None:
    url, proc = alertmanager
    alert = make_alert(Severity.CRITICAL)
    with HttpSession() as session:
        sink = AlertmanagerSink(
            "am",
            url,
            session=session,
            timeout=5,
            resolve_after=timedelta(minutes=30),
            generator_url="https://mutt.example.org/alerts",
        )
        assert sink.health()
        before = utcnow()
        result = sink.send(alert)
        after = utcnow()
        assert (result.outcome, result.status) == ("delivered", 200)

        (got,) = alerts(url)
        assert got["labels"] == {
            "alertname": "mutt.rule.42",
            "instance": "core-router-01.dc1.example.com",
            "host": "core-router-01.dc1.example.com",
            "severity": "critical",
            "team": "netops",
            "handling": "Page_and_ticket",
            "environment": "prod",
            "rule_id": "42",
            "mutt_dedup_key": alert.dedup_key,
        }
        assert got["annotations"] == {
            "summary": alert.summary,
            "description": alert.event.message,
            "alert_id": str(alert.alert_id),
            "event_id": str(alert.event_id),
            "syslog_severity": "critical",
            "trap_oid": "1.3.6.1.6.3.1.1.5.3",
            "source_type": "cisco-ios",
        }
        assert got["status"]["state"] == "active"
        assert got["generatorURL"] == "https://mutt.example.org/alerts"
        assert parse(got["startsAt"]) == alert.event.time
        # The event is old (a replay): it still stays active for resolve_after from now.
        ends = parse(got["endsAt"])
        slack = timedelta(milliseconds=1)
        assert before + timedelta(minutes=30) - slack <= ends <= after + timedelta(minutes=30)

        # The same dedup key is the same Alertmanager alert; another one is a second alert.
        assert sink.send(make_alert(Severity.CRITICAL, ce_id="evt-2")).outcome == "delivered"
        assert len(alerts(url)) == 1
        other = make_alert(Severity.CRITICAL, ce_id="evt-3", dedup_key="edge-fw-02:rule-42")
        assert sink.send(other).outcome == "delivered"
        assert [a["labels"]["mutt_dedup_key"] for a in alerts(url)] == [
            alert.dedup_key,
            "edge-fw-02:rule-42",
        ]

        stop(proc, timeout=5)
        assert not sink.health()
        assert sink.send(alert).outcome == "retry"
