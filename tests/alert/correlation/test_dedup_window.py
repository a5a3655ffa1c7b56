"""Dedup window: repeats of an alert key within the window are counted, not delivered."""

from __future__ import annotations

from functions.alert.correlation.dedup_window import repeats
from functions.alert.correlation.pairing import default_key
from tests.alert.correlation.conftest import Stage, alerts, link, records


def test_repeats_within_the_window_are_counted_not_delivered(stage: Stage) -> None:
    stage.set(alert_dedup_seconds=300)
    first = stage.send("disk failed in slot 1")
    assert len(alerts(first)) == 1
    stage.clock.advance(60)
    outcomes = stage.send("disk failed in slot 1", "disk failed in slot 2")
    assert alerts(outcomes) == []
    assert [r["correlation"] for r in records(outcomes)] == ["deduplicated"] * 2
    assert [r["forwarded"] for r in records(outcomes)] == [False, False]
    key = default_key(stage.rules["disk failed"], "core-1")
    assert repeats(stage.r, stage.keys, key) == 2
    # other hosts are other keys
    assert len(alerts(stage.send("disk failed in slot 1", host="core-2"))) == 1


def test_after_the_window_the_next_one_is_delivered_again(stage: Stage) -> None:
    stage.set(alert_dedup_seconds=300)
    stage.send("disk failed")
    stage.clock.advance(301)
    (reminder,) = alerts(stage.send("disk failed"))
    assert repeats(stage.r, stage.keys, reminder.dedup_key) == 0


def test_a_resolve_closes_the_window(stage: Stage) -> None:
    stage.pair_links()
    stage.set(alert_dedup_seconds=3600, flap_threshold=0)
    assert len(alerts(stage.send(link("down")))) == 1
    assert alerts(stage.send(link("down"))) == []  # a repeat while down
    assert [a.action for a in alerts(stage.send(link("up")))] == ["resolve"]
    assert [a.action for a in alerts(stage.send(link("down")))] == ["trigger"]  # a new problem


def test_a_redelivered_alert_is_delivered_again_not_counted(stage: Stage) -> None:
    stage.set(alert_dedup_seconds=300)
    event = stage.event("disk failed")
    (first,) = alerts(stage.send(event))
    (again,) = alerts(stage.send(event))
    assert again.alert_id == first.alert_id  # forward delivers an id once
    assert repeats(stage.r, stage.keys, first.dedup_key) == 0


def test_off_by_default(stage: Stage) -> None:
    assert len(alerts(stage.send("disk failed", "disk failed", "disk failed"))) == 3
