"""``mutt run --demo``: send sample events through the real HTTP ingest and
wait until every alert they raise has reached the sink, then print a summary.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
import requests

from mutt.run import Pipeline
from shared.broker.keys import GROUP_ALERT, GROUP_FORWARD, Keys
from shared.broker.streams import drained
from shared.envelope import FIELD, decode
from shared.models import TYPE_SYSLOG, TYPE_TRAP
from shared.redis_client import connect_redis

DEMO_SOURCE = "/mutt/demo"
WAIT_SECONDS = 120.0


def load_events(data_file: Path | None) -> list[dict[str, Any]]:
    """The demo's events: a JSON array of legacy-shaped objects."""
    raw = (
        data_file.read_bytes()
        if data_file
        else (resources.files("mutt.demo_data").joinpath("syslog_events.json").read_bytes())
    )
    events = orjson.loads(raw)
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise ValueError("demo data must be a JSON array of objects")
    return events


def send_events(url: str, events: list[dict[str, Any]], run_id: str) -> tuple[int, list[str]]:
    """POST each event as a binary-mode CloudEvent; return (accepted, rejected reasons)."""
    accepted = 0
    errors: list[str] = []
    with requests.Session() as http:
        for i, data in enumerate(events):
            headers = {
                "ce-specversion": "1.0",
                "ce-id": f"{run_id}-{i}",
                "ce-source": DEMO_SOURCE,
                "ce-type": TYPE_TRAP if data.get("trap_oid") else TYPE_SYSLOG,
                "content-type": "application/json",
            }
            resp = http.post(url, data=orjson.dumps(data), headers=headers, timeout=10)
            if resp.status_code in (200, 202):
                accepted += 1
            else:
                errors.append(f"event {i}: HTTP {resp.status_code} {resp.text[:200]}")
    return accepted, errors


def _ids_after(r: Any, stream: str, start: str, key: str, want: set[str] | None) -> dict[str, str]:
    """Map of ``key`` values in entries after ``start`` (to the related id)."""
    found: dict[str, str] = {}
    for _eid, fields in r.xrange(stream, min=f"({start}", max="+"):
        data = decode(fields[FIELD]).data
        if want is None or str(data.get("event_id", data.get("alert_id"))) in want:
            found[str(data[key])] = str(data.get("outcome", ""))
    return found


def run_demo(pipeline: Pipeline, say: Callable[[str], None], data_file: Path | None) -> int:
    """Drive the demo against a started pipeline; 0 when every alert was delivered."""
    r = connect_redis(pipeline.redis_url)
    keys = Keys(pipeline.settings.namespace)
    marks = {
        s: (r.xinfo_stream(s)["last-generated-id"] if r.exists(s) else b"0-0").decode()
        for s in (keys.events, keys.alerts, keys.delivered)
    }
    events = load_events(data_file)
    run_id = uuid.uuid4().hex[:12]
    say(f"demo: sending {len(events)} events to {pipeline.ingest_url}/")
    started = time.monotonic()
    accepted, errors = send_events(pipeline.ingest_url + "/", events, run_id)
    for err in errors[:5]:
        say(f"demo: rejected {err}")
    deadline = time.monotonic() + WAIT_SECONDS
    alerts: dict[str, str] = {}
    delivered: dict[str, str] = {}
    while time.monotonic() < deadline:
        pipeline.check_children()
        settled = drained(r, keys.events, GROUP_ALERT) and drained(r, keys.alerts, GROUP_FORWARD)
        event_ids = {
            str(v) for v in _ids_after(r, keys.events, marks[keys.events], "event_id", None)
        }
        alerts = _ids_after(r, keys.alerts, marks[keys.alerts], "alert_id", event_ids)
        delivered = _ids_after(r, keys.delivered, marks[keys.delivered], "alert_id", set(alerts))
        if settled and len(event_ids) >= accepted and set(alerts) <= set(delivered):
            break
        time.sleep(0.2)
    elapsed = time.monotonic() - started
    ok = accepted == len(events) and bool(alerts) and set(alerts) <= set(delivered)
    rows = [
        ("events sent", str(len(events))),
        ("events accepted", str(accepted)),
        ("alerts raised", str(len(alerts))),
        ("alerts delivered", str(sum(1 for a in alerts if a in delivered))),
        ("sink", str(pipeline.settings.sink_path)),
        ("time", f"{elapsed:.2f} s"),
        ("result", "OK: every alert delivered" if ok else "FAILED: alerts missing at the sink"),
    ]
    width = max(len(k) for k, _ in rows)
    print("\nMUTT demo summary")
    print("-" * (width + 30))
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    print(flush=True)
    r.close()
    return 0 if ok else 1
