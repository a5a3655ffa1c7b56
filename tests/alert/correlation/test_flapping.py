"""Flapping: a paired key that keeps changing state raises one alert and holds the rest."""

from __future__ import annotations

from cloudevents.http import CloudEvent

from functions.alert.correlation import TYPE_TIMER, Timer, parse_timer
from functions.alert.correlation.flapping import flapping_key
from shared.handler import Outcome
from tests.alert.correlation.conftest import Stage, alerts, link, records, timers


def flap(stage: Stage, changes: int) -> list[Outcome]:
    """Alternate down/up ``changes`` times, one event per batch, a second apart."""
    outcomes: list[Outcome] = []
    for n in range(changes):
        outcomes += stage.send(link("down" if n % 2 == 0 else "up"))
        stage.clock.advance(1)
    return outcomes


def test_more_than_n_changes_raise_one_flapping_alert_and_hold_the_rest(stage: Stage) -> None:
    stage.pair_links()
    stage.set(flap_threshold=3, flap_window_seconds=60, flap_settle_seconds=30)

    outcomes = flap(stage, 8)
    delivered = alerts(outcomes)
    # 3 changes are delivered as they are; the 4th begins flapping; the rest are held
    assert [a.action for a in delivered[:3]] == ["trigger", "resolve", "trigger"]
    flapping = delivered[3]
    assert len(delivered) == 4
    assert flapping.dedup_key == flapping_key(delivered[0].dedup_key)
    assert flapping.action == "trigger" and "flapping" in flapping.summary
    notes = [r["correlation"] for r in records(outcomes)]
    assert notes == ["resolved" if n % 2 else None for n in range(3)] + [
        "flapping:began",
        *["flapping:held"] * 4,
    ]
    (timer,) = timers(outcomes)  # one timer per flapping episode
    assert parse_timer(timer[0]).due_ms == int((stage.clock.now - 5) * 1000) + 30_000


def test_settling_resolves_the_flapping_alert_and_delivers_the_final_state(stage: Stage) -> None:
    stage.pair_links()
    stage.set(flap_threshold=3, flap_window_seconds=60, flap_settle_seconds=30)
    outcomes = flap(stage, 5)  # ends with a held trigger: the link is down
    sent = alerts(outcomes)
    assert [a.action for a in sent] == ["trigger", "resolve", "trigger", "trigger"]
    (timer, _) = timers(outcomes)[0]

    # still changing when the timer comes: it waits for quiet
    stage.send(link("up"))
    stage.clock.now = parse_timer(timer).due_ms / 1000
    waited = stage.send(timer)
    assert alerts(waited) == []
    (again, _) = timers(waited)[0]
    assert parse_timer(again).due_ms > parse_timer(timer).due_ms

    # quiet: settled; the last change was "up" and the sink's last word was "down"
    stage.clock.now = parse_timer(again).due_ms / 1000
    settled = alerts(stage.send(again))
    assert [(a.action, a.dedup_key) for a in settled] == [
        ("resolve", sent[3].dedup_key),  # the flapping alert
        ("resolve", sent[0].dedup_key),  # the link is up again
    ]
    # a redelivered timer answers the same, and a stale one nothing
    assert alerts(stage.send(again)) == settled
    assert alerts(stage.send(timer)) == []
    # the key is a normal key again
    (down,) = alerts(stage.send(link("down")))
    assert down.action == "trigger"


def test_settling_in_the_state_the_sink_knows_sends_only_the_flapping_resolve(
    stage: Stage,
) -> None:
    stage.pair_links()
    stage.set(flap_threshold=3, flap_window_seconds=60, flap_settle_seconds=30)
    outcomes = flap(stage, 6)  # the sink last heard "down" (before flapping began)
    outcomes += stage.send(link("down"))  # and after the held changes the link is down
    (timer, _) = timers(outcomes)[0]
    stage.clock.advance(60)
    settled = alerts(stage.send(timer))
    assert [a.summary.startswith("[MUTT] stopped flapping") for a in settled] == [True]


def test_slow_changes_never_flap(stage: Stage) -> None:
    stage.pair_links()
    stage.set(flap_threshold=3, flap_window_seconds=60)
    sent = []
    for n in range(10):
        sent += alerts(stage.send(link("down" if n % 2 == 0 else "up")))
        stage.clock.advance(30)  # two changes per window at most
    assert len(sent) == 10 and not any("flapping" in a.summary for a in sent)


def test_threshold_zero_turns_flapping_off(stage: Stage) -> None:
    stage.pair_links()
    stage.set(flap_threshold=0)
    assert len(alerts(flap(stage, 12))) == 12


def test_settling_down_delivers_the_held_trigger(stage: Stage) -> None:
    stage.pair_links()
    stage.set(flap_threshold=2, flap_window_seconds=60, flap_settle_seconds=30)
    outcomes = flap(stage, 3)  # down, up, then down begins flapping: the sink heard "up"
    sent = alerts(outcomes)
    assert [a.action for a in sent] == ["trigger", "resolve", "trigger"]
    assert "flapping" in sent[2].summary
    (timer, _) = timers(outcomes)[0]
    stage.clock.advance(60)
    settled = alerts(stage.send(timer))
    assert [(a.action, a.dedup_key) for a in settled] == [
        ("resolve", sent[2].dedup_key),
        ("trigger", sent[0].dedup_key),  # the held down: the link is down
    ]
    assert settled[1].event.message == link("down")
    # and it is open again: its clear resolves it
    (resolve,) = alerts(stage.send(link("up")))
    assert resolve.dedup_key == sent[0].dedup_key


def test_a_malformed_timer_is_rejected_and_a_stale_one_ignored(stage: Stage) -> None:
    bad = CloudEvent({"type": TYPE_TIMER, "source": "/x", "id": "1"}, {"kind": "nap"})
    (outcome,) = stage.handler.handle([bad])
    assert outcome.status == "reject" and "invalid correlation timer" in outcome.reason
    stale = Timer("flapping", "mutt:1:nowhere", 1).event({})
    (outcome,) = stage.handler.handle([stale])
    assert outcome.status == "ok" and outcome.replies == () and outcome.later == ()
