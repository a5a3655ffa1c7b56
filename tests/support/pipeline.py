"""Driving a whole pipeline from a test: processes, events in over HTTP, alerts out of the sink."""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import orjson
import pg8000.native
import redis
import requests

from shared.broker.keys import Keys
from shared.broker.stages import consumed
from shared.broker.streams import drained
from shared.config import Settings
from tests.support.processes import free_port, mutt, settings_env, stop, wait_http

# Matches the first sample rule (mutt/demo_data/rules.yaml): one alert per event.
MESSAGE = "%LINK-3-UPDOWN: Interface Gi0/1, changed state to down"
SOURCE = "/load"


class Processes:
    """Children started by a test, all stopped at the end."""

    def __init__(self, settings: Settings) -> None:
        self.env = settings_env(settings)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(mutt(*args), env=self.env)
        self.procs[name] = proc
        return proc

    def serve(self, function: str) -> str:
        port = free_port()
        proc = self.start(function, "serve", function, "--port", str(port))
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/healthz", proc)
        return url

    def run(self) -> str:
        """``mutt run`` on a free port; its ingest URL once it answers."""
        port = free_port()
        proc = self.start("run", "run", "--port", str(port))
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/healthz", proc, timeout=90)
        return url

    def check(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise AssertionError(f"{name} exited with {proc.returncode}")

    def stop_all(self) -> dict[str, int]:
        return {name: stop(p) for name, p in reversed(self.procs.items())}


def batch_body(run: str, numbers: range) -> bytes:
    """A CloudEvents batch: event n from host ``dev-<n % 300>`` (300 devices), id ``run-n``."""
    return orjson.dumps(
        [
            {
                "specversion": "1.0",
                "id": f"{run}-{n}",
                "source": SOURCE,
                "type": "io.mutt.syslog.v1",
                "datacontenttype": "application/json",
                "data": {"hostname": f"core-{n % 300}", "message": MESSAGE, "n": n},
            }
            for n in numbers
        ]
    )


def send(ingest: str, run: str, numbers: range, timeout: float = 60.0) -> int:
    """POST ``numbers`` as one batch until ingest accepts it (503 and 429 are retried)."""
    deadline = time.monotonic() + timeout
    tries = 0
    while True:
        tries += 1
        try:
            resp = requests.post(
                ingest + "/",
                data=batch_body(run, numbers),
                headers={"content-type": "application/cloudevents-batch+json"},
                timeout=10,
            )
            if resp.status_code == 202:
                return tries
            why = f"{resp.status_code} {resp.text[:200]}"
        except requests.RequestException as exc:
            why = str(exc)
        if time.monotonic() > deadline:
            raise AssertionError(f"ingest did not accept the batch: {why}")
        time.sleep(0.2)


@dataclass
class Delivered:
    """What the file sink holds for one run's events."""

    lines: int
    alerts: Counter[str]  # alert id -> lines

    @property
    def doubled(self) -> int:
        return sum(n - 1 for n in self.alerts.values() if n > 1)


def sink(path: Path, run: str) -> Delivered:
    lines = 0
    alerts: Counter[str] = Counter()
    if path.exists():
        data = path.read_bytes()
        for line in data[: data.rfind(b"\n") + 1].splitlines():
            if not line.strip():
                continue
            doc = orjson.loads(line)
            if str(doc["alert"]["event"]["id"]).startswith(f"{run}-"):
                lines += 1
                alerts[str(doc["alert_id"])] += 1
    return Delivered(lines, alerts)


def wait_delivered(
    path: Path, run: str, count: int, procs: Processes, timeout: float = 240.0
) -> Delivered:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        procs.check()
        got = sink(path, run)
        if len(got.alerts) >= count:
            return got
        time.sleep(0.2)
    got = sink(path, run)
    raise AssertionError(f"{len(got.alerts)} of {count} alerts delivered within {timeout:.0f}s")


def wait_drained(r: redis.Redis, keys: Keys, timeout: float = 60.0) -> None:
    """Until every group of every partition has acknowledged everything and nothing is parked."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(drained(r, s, g) for s, g in consumed(keys)):
            return
        time.sleep(0.1)
    raise AssertionError("the pipeline did not drain")


def audit_rows(pg: pg8000.native.Connection, run: str) -> int:
    found = pg.run(
        "SELECT count(*) FROM event_audit_log WHERE event->>'id' LIKE :p",
        p=f"{run}-%",
    )
    return int(found[0][0])
