"""End to end through processes: an event POSTed to ingest reaches the file sink,
through both runtimes (stream workers, and HTTP functions fed by the relay)."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pg8000.native
import pytest
import requests

from shared.config import Settings
from shared.models import event_id_for
from tests.support.factories import accepted_event
from tests.support.processes import free_port, mutt, settings_env, stop, wait_http

pytestmark = pytest.mark.slow


class Processes:
    """Children started by a test, all stopped at the end."""

    def __init__(self, settings: Settings) -> None:
        self.env = settings_env(settings)
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(mutt(*args), env=self.env)
        self.procs.append(proc)
        return proc

    def serve(self, function: str) -> str:
        port = free_port()
        proc = self.start("serve", function, "--port", str(port))
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/healthz", proc)
        return url

    def stop_all(self) -> list[int]:
        return [stop(p) for p in reversed(self.procs)]


@pytest.fixture
def procs(settings: Settings) -> Iterator[Processes]:
    p = Processes(settings)
    yield p
    p.stop_all()


def sink_lines(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    data = path.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]  # skip a line being written right now
    return [orjson.loads(line) for line in complete.splitlines() if line.strip()]


def wait_for_alerts(
    path: Path, event_ids: set[str], timeout: float = 30.0
) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = sink_lines(path)
        got = {str(line["alert"]["event_id"]) for line in lines}  # type: ignore[index]
        if event_ids <= got:
            return lines
        time.sleep(0.1)
    raise AssertionError(f"alerts for {len(event_ids)} events did not reach {path}")


def post_binary(url: str, ce_id: str, data: dict[str, object]) -> requests.Response:
    headers = {
        "ce-specversion": "1.0",
        "ce-id": ce_id,
        "ce-source": "/test",
        "ce-type": "io.mutt.syslog.v1",
        "content-type": "application/json",
    }
    return requests.post(url, data=orjson.dumps(data), headers=headers, timeout=10)


def post_structured(url: str, ce_id: str, data: dict[str, object]) -> requests.Response:
    body = {
        "specversion": "1.0",
        "id": ce_id,
        "source": "/test",
        "type": "io.mutt.syslog.v1",
        "datacontenttype": "application/json",
        "data": data,
    }
    return requests.post(
        url,
        data=orjson.dumps(body),
        timeout=10,
        headers={"content-type": "application/cloudevents+json"},
    )


EVENT = {
    "hostname": "Core-Router-01 ",
    "message": "%LINK-3-UPDOWN: Interface Gi0/1, changed state to down",
    "syslog_severity": "Error",
}


def send_both_modes(ingest: str) -> set[str]:
    ids = {f"bin-{uuid.uuid4()}", f"str-{uuid.uuid4()}"}
    for ce_id in ids:
        post = post_binary if ce_id.startswith("bin") else post_structured
        resp = post(ingest + "/", ce_id, EVENT)
        assert resp.status_code == 202, resp.text
    return {str(event_id_for("/test", i)) for i in ids}


@pytest.mark.usefixtures("demo_rules")
def test_stream_worker_runtime_delivers_to_the_sink(procs: Processes, settings: Settings) -> None:
    ingest = procs.serve("ingest")
    procs.start("worker", "alert")
    procs.start("worker", "forward")
    procs.start("worker", "audit")
    event_ids = send_both_modes(ingest)
    lines = wait_for_alerts(settings.sink_path, event_ids)
    alert = lines[0]["alert"]
    assert alert["event"]["hostname"] == "core-router-01"  # type: ignore[index]
    assert alert["severity_name"] == "error"  # type: ignore[index]
    assert alert["handling"] == "Page_and_ticket"  # type: ignore[index]
    assert alert["team"] == "NetOps"  # type: ignore[index]
    assert procs.stop_all() == [0, 0, 0, 0]  # SIGTERM: every process exits cleanly


@pytest.mark.usefixtures("demo_rules")
def test_http_function_runtime_delivers_to_the_sink(procs: Processes, settings: Settings) -> None:
    ingest = procs.serve("ingest")
    alert = procs.serve("alert")
    forward = procs.serve("forward")
    procs.start("relay", "--to", f"alert={alert}/", "--to", f"forward={forward}/")
    event_ids = send_both_modes(ingest)
    wait_for_alerts(settings.sink_path, event_ids)
    assert procs.stop_all() == [0, 0, 0, 0]


@pytest.mark.usefixtures("demo_rules")
def test_alert_function_replies_with_a_binary_cloudevent(procs: Processes) -> None:
    alert = procs.serve("alert")
    ce = accepted_event(0, "Interface Gi0/1, changed state to down")
    headers = {f"ce-{k}": str(v) for k, v in ce.get_attributes().items()}
    headers["content-type"] = "application/json"
    resp = requests.post(alert + "/", data=orjson.dumps(ce.data), headers=headers, timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.headers["ce-type"] == "io.mutt.alert.raised.v1"
    assert resp.json()["event_id"] == ce.data["event_id"]
    bad = requests.post(alert + "/", data=b"{}", headers=headers, timeout=10)
    assert bad.status_code == 400
    assert "invalid event" in bad.json()["error"]
    not_ce = requests.post(
        alert + "/", data=b"{}", headers={"content-type": "application/json"}, timeout=10
    )
    assert not_ce.status_code == 400


@pytest.fixture
def no_rules_left(pg: pg8000.native.Connection) -> Iterator[None]:
    """The demo seeds the session's rule table: leave it empty for the next test."""
    yield
    pg.run("DELETE FROM alert_rules; DELETE FROM development_hosts; DELETE FROM device_teams")


def run_demo(settings: Settings) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        mutt("run", "--demo", "--port", str(free_port())),
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_mutt_run_demo_delivers_every_alert(settings: Settings, no_rules_left: None) -> None:
    proc = run_demo(settings)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = dict(
        line.split(None, 1) if "  " not in line else [p.strip() for p in line.split("  ", 1)]
        for line in proc.stdout.splitlines()
        if "  " in line
    )
    assert summary["events sent"] == "66"
    assert summary["alerts raised"] == summary["alerts delivered"] != "0"
    assert "every alert delivered" in summary["result"]
    # Why a matched event raised no alert is said, by rule.
    assert "matched a rule but raised no alert:" in proc.stdout
    assert " says Ignore for dev hosts" in proc.stdout
    raised = int(summary["alerts raised"])
    assert summary["sink"].endswith(f"({raised} lines from this run)")

    # A second demo on the same data appends to the sink, and counts its own run only.
    again = run_demo(settings)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"({raised} lines from this run)" in again.stdout
    assert len(settings.sink_path.read_bytes().splitlines()) == 2 * raised
