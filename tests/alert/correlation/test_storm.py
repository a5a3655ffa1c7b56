"""Storm control: per-host and global caps per minute, summarized into one alert per window."""

from __future__ import annotations

from functions.alert.correlation import parse_timer
from functions.alert.correlation.storm import summary_due
from shared.models import Severity
from tests.alert.correlation.conftest import Stage, alerts, link, records, timers


def test_alerts_over_the_host_cap_become_one_storm_alert(stage: Stage) -> None:
    stage.set(storm_host_per_minute=3)
    batch = [stage.event(f"disk failed in slot {n}", severity=Severity.WARNING) for n in range(10)]
    batch[7] = stage.event("disk failed in slot 7", severity=Severity.CRITICAL)
    outcomes = stage.send(*batch)
    assert len(alerts(outcomes)) == 3
    notes = [r["correlation"] for r in records(outcomes)]
    assert notes == [None] * 3 + ["storm:host"] * 7
    (timer, delay) = timers(outcomes)[0]
    assert len(timers(outcomes)) == 1
    parsed = parse_timer(timer)
    assert parsed.due_ms == summary_due(int(stage.clock.now * 1000) // 60_000)
    assert 0 < delay <= 62

    stage.clock.now = parsed.due_ms / 1000
    (storm,) = alerts(stage.send(timer))
    assert storm.rule_id == "storm"
    assert storm.dedup_key == "mutt:storm:host:core-1"
    assert storm.team == "Storage"
    assert storm.severity == Severity.CRITICAL  # the worst one suppressed
    assert "7 alerts suppressed" in storm.summary and "cap 3/min" in storm.summary
    # a redelivered timer gives the same summary (same id: delivered once)
    assert alerts(stage.send(timer)) == [storm]


def test_the_cap_is_per_host_and_per_minute(stage: Stage) -> None:
    stage.set(storm_host_per_minute=2)
    assert len(alerts(stage.send(*["disk failed"] * 3))) == 2
    assert len(alerts(stage.send(*["disk failed"] * 2, host="core-2"))) == 2
    stage.clock.advance(60)
    assert len(alerts(stage.send(*["disk failed"] * 2))) == 2


def test_global_cap_counts_only_what_host_caps_let_through(stage: Stage) -> None:
    stage.set(storm_host_per_minute=2, storm_global_per_minute=5)
    noisy = stage.send(*["disk failed"] * 20, host="noisy")
    assert len(alerts(noisy)) == 2
    others = [stage.event("disk failed", host=f"h{n}") for n in range(4)]
    outcomes = stage.send(*others)
    assert len(alerts(outcomes)) == 3  # 2 + 3 = the global 5
    assert records(outcomes)[-1]["correlation"] == "storm:global"
    (timer, _) = timers(outcomes)[0]
    stage.clock.advance(70)
    (storm,) = alerts(stage.send(timer))
    assert storm.dedup_key == "mutt:storm:global"
    assert storm.team == "NETO"  # a global storm goes to the default team
    assert "1 alerts suppressed" in storm.summary


def test_resolves_are_never_capped(stage: Stage) -> None:
    stage.pair_links()
    stage.set(storm_host_per_minute=1, flap_threshold=0)
    assert len(alerts(stage.send(link("down", "Gi0/1"), link("down", "Gi0/2")))) == 1
    (resolve,) = alerts(stage.send(link("up", "Gi0/1")))
    assert resolve.action == "resolve"


def test_off_by_default(stage: Stage) -> None:
    assert len(alerts(stage.send(*["disk failed"] * 50))) == 50
