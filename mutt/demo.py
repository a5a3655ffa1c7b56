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

from mutt import sample_rules
from mutt.run import Pipeline
from shared.broker.keys import Keys
from shared.broker.stages import consumed
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


def _after(r: Any, stream: str, start: str) -> list[dict[str, Any]]:
    """The data of every entry of ``stream`` after id ``start``."""
    return [decode(f[FIELD]).data for _, f in r.xrange(stream, min=f"({start}", max="+")]


def _marks(r: Any, keys: Keys) -> dict[str, str]:
    """The last id of every partition's events, alerts, delivered and audit streams now."""
    streams = [
        stream
        for part in keys.all_partitions()
        for stream in (part.events, part.alerts, part.delivered, part.audit)
    ]
    return {
        stream: (
            r.xinfo_stream(stream)["last-generated-id"] if r.exists(stream) else b"0-0"
        ).decode()
        for stream in streams
    }


def _after_all(r: Any, keys: Keys, marks: dict[str, str], name: str) -> list[dict[str, Any]]:
    """What every partition's ``name`` stream (``events``, ...) got after ``marks``."""
    found = []
    for part in keys.all_partitions():
        stream = str(getattr(part, name))
        found += _after(r, stream, marks[stream])
    return found


def run_demo(pipeline: Pipeline, say: Callable[[str], None], data_file: Path | None) -> int:
    """Drive the demo against a started pipeline; 0 when every alert was delivered."""
    s = pipeline.settings
    sample_rules.seed(
        pipeline.redis_url,
        pipeline.database_url,
        s.database_schema,
        s.namespace,
        lambda text: say(f"demo: {text}"),
    )
    time.sleep(0.6)  # the alert workers see the new rule version within 0.5 s
    r = connect_redis(pipeline.redis_url)
    keys = Keys(s.namespace, partitions=s.partitions)
    stages = consumed(keys)
    marks = _marks(r, keys)

    def after(name: str) -> list[dict[str, Any]]:
        return _after_all(r, keys, marks, name)

    events = load_events(data_file)
    run_id = uuid.uuid4().hex[:12]
    say(f"demo: sending {len(events)} events to {pipeline.ingest_url}/")
    started = time.monotonic()
    accepted, errors = send_events(pipeline.ingest_url + "/", events, run_id)
    for err in errors[:5]:
        say(f"demo: rejected {err}")
    deadline = time.monotonic() + WAIT_SECONDS
    event_ids: set[str] = set()
    matched: set[str] = set()
    records: list[dict[str, Any]] = []
    alerts: set[str] = set()
    delivered: set[str] = set()
    while time.monotonic() < deadline:
        pipeline.check_children()
        settled = all(drained(r, s, g) for s, g in stages)
        event_ids = {str(d["event_id"]) for d in after("events")}
        records = [d for d in after("audit") if str(d["event_id"]) in event_ids]
        matched = {str(d["event_id"]) for d in records if d.get("matched_rule_id") is not None}
        alerts = {str(d["alert_id"]) for d in after("alerts") if str(d["event_id"]) in event_ids}
        delivered = {str(d["alert_id"]) for d in after("delivered") if str(d["alert_id"]) in alerts}
        if settled and len(event_ids) >= accepted and alerts <= delivered:
            break
        time.sleep(0.2)
    elapsed = time.monotonic() - started
    ok = accepted == len(events) and bool(alerts) and alerts <= delivered
    sink = pipeline.settings.sink_path
    in_sink = _in_sink(sink, alerts)
    rows = [
        ("events sent", str(len(events))),
        ("events accepted", str(accepted)),
        ("matched a rule", str(len(matched))),
        ("alerts raised", str(len(alerts))),
        ("alerts delivered", str(len(alerts & delivered))),
        ("sink", f"{sink} ({in_sink} lines from this run)"),
        ("time", f"{elapsed:.2f} s"),
        ("result", "OK: every alert delivered" if ok else "FAILED: alerts missing at the sink"),
    ]
    width = max(len(k) for k, _ in rows)
    print("\nMUTT demo summary (this run only)")
    print("-" * (width + 30))
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    quiet = no_alert_reasons(records, alerts)
    if quiet:
        print("\nmatched a rule but raised no alert:")
        for line in quiet:
            print(f"  {line}")
    print(flush=True)
    r.close()
    return 0 if ok else 1


def _in_sink(sink: Path, alerts: set[str]) -> int:
    """Lines of the sink file that carry one of this run's alerts (earlier runs append too)."""
    if not sink.exists():
        return 0
    found = 0
    with sink.open("rb") as fh:
        for line in fh:
            try:
                if str(orjson.loads(line).get("alert_id")) in alerts:
                    found += 1
            except (orjson.JSONDecodeError, AttributeError):
                continue
    return found


def no_alert_reasons(records: list[dict[str, Any]], alerts: set[str]) -> list[str]:
    """Why events that matched a rule raised no alert, one line per rule and reason."""
    counts: dict[str, int] = {}
    for rec in records:
        rule = rec.get("matched_rule_id")
        if rule is None or str(rec.get("alert_id")) in alerts:
            continue
        decision = str(rec.get("handling_decision"))
        if decision == "Clear":
            why = f"rule {rule}: a clear (it resolves an earlier alert)"
        elif decision == "Ignore":
            why = f"rule {rule} says Ignore for {rec.get('environment')} hosts"
        else:
            why = f"rule {rule}: {decision}, held back by {rec.get('correlation') or 'correlation'}"
        counts[why] = counts.get(why, 0) + 1
    return [f"{n} event{'s' if n > 1 else ''}: {why}" for why, n in sorted(counts.items())]
