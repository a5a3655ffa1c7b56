"""Down/up pairing through the real alert handler: the clear resolves the open alert."""

from __future__ import annotations

import pytest

from functions.alert.correlation.config import parse_correlation
from functions.alert.correlation.pairing import default_key
from tests.alert.correlation.conftest import Stage, alerts, bgp, link, records


def test_clear_resolves_the_open_alert_of_the_same_interface(stage: Stage) -> None:
    stage.pair_links()
    rule = stage.rules["changed state to down"]

    (down,) = alerts(stage.send(link("down")))
    assert down.action == "trigger"
    assert down.dedup_key == f"mutt:{rule}:core-1:gigabitethernet0/1"

    outcomes = stage.send(link("up"))
    (resolve,) = alerts(outcomes)
    assert resolve.action == "resolve"
    assert resolve.dedup_key == down.dedup_key
    # the trigger's routing fields, so the resolve reaches the sinks the trigger reached
    same = ("rule_id", "team", "handling", "environment", "severity")
    assert [getattr(resolve, f) for f in same] == [getattr(down, f) for f in same]
    assert resolve.event.message == link("up")
    (record,) = records(outcomes)
    assert record["matched_rule_id"] == rule
    assert record["handling_decision"] == "Clear"
    assert record["forwarded"] is True
    assert record["alert_id"] == str(resolve.alert_id)
    assert record["correlation"] == "resolved"


def test_clear_of_another_interface_or_host_resolves_nothing(stage: Stage) -> None:
    stage.pair_links()
    stage.send(link("down", "Gi0/1"))
    for outcomes in (stage.send(link("up", "Gi0/2")), stage.send(link("up", "Gi0/1"), host="b")):
        assert alerts(outcomes) == []
        (record,) = records(outcomes)
        assert record["correlation"] == "clear:nothing-open"
        assert record["forwarded"] is False
    (resolve,) = alerts(stage.send(link("up", "Gi0/1")))
    assert resolve.action == "resolve"


def test_second_clear_finds_nothing_open(stage: Stage) -> None:
    stage.pair_links()
    stage.send(link("down"))
    assert len(alerts(stage.send(link("up")))) == 1
    assert alerts(stage.send(link("up"))) == []


def test_down_and_up_in_one_batch_keep_their_order(stage: Stage) -> None:
    stage.pair_links()
    down, up, down_again = alerts(stage.send(link("down"), link("up"), link("down")))
    assert [a.action for a in (down, up, down_again)] == ["trigger", "resolve", "trigger"]
    assert down.dedup_key == up.dedup_key == down_again.dedup_key


def test_masked_instance_pairs_by_the_peer_address(stage: Stage) -> None:
    rule = stage.rules[r"ADJCHANGE: neighbor \S+ Down"]
    stage.pairs({"rule": rule, "clear": r"ADJCHANGE: neighbor \S+ Up"})  # instance: masked
    (a,) = alerts(stage.send(bgp("Down", "10.0.0.2")))
    (b,) = alerts(stage.send(bgp("Down", "10.0.0.3")))
    assert a.dedup_key == f"mutt:{rule}:core-1:10.0.0.2" != b.dedup_key
    (resolve,) = alerts(stage.send(bgp("Up", "10.0.0.3")))
    assert resolve.dedup_key == b.dedup_key


def test_instance_none_pairs_per_rule_and_host(stage: Stage) -> None:
    rule = stage.rules["changed state to down"]
    stage.pairs({"rule": rule, "clear": "changed state to up", "instance": "none"})
    (down,) = alerts(stage.send(link("down", "Gi0/1")))
    assert down.dedup_key == default_key(rule, "core-1")
    (resolve,) = alerts(stage.send(link("up", "Gi0/9")))
    assert resolve.dedup_key == down.dedup_key


def test_unpaired_rules_keep_their_key(stage: Stage) -> None:
    stage.pair_links()
    (alert,) = alerts(stage.send("disk failed in slot 3"))
    assert alert.dedup_key == default_key(stage.rules["disk failed"], "core-1")


def test_a_paired_rule_matching_its_own_clear_treats_it_as_the_clear(stage: Stage) -> None:
    rule = stage.rules[r"ADJCHANGE: neighbor \S+ Down"]
    # the clear pattern also matches the problem's own rule text: clear wins
    stage.pairs({"rule": rule, "clear": r"neighbor \S+ Down.*cleared"})
    (trigger,) = alerts(stage.send(bgp("Down")))
    outcomes = stage.send(bgp("Down") + " (session cleared)")
    (resolve,) = alerts(outcomes)
    assert resolve.action == "resolve" and resolve.dedup_key == trigger.dedup_key
    assert records(outcomes)[0]["handling_decision"] == "Clear"


def test_redelivered_batch_gives_the_same_alerts(stage: Stage) -> None:
    stage.pair_links()
    down_event, up_event = stage.event(link("down")), stage.event(link("up"))
    first = alerts(stage.send(down_event, up_event))
    again = alerts(stage.send(down_event, up_event))  # worker died before the ack
    assert [a.alert_id for a in again] == [a.alert_id for a in first]
    assert [a.action for a in again] == ["trigger", "resolve"]
    assert alerts(stage.send(up_event)) == alerts(stage.send(up_event))


def test_without_pairs_nothing_changes(stage: Stage) -> None:
    outcomes = stage.send(link("down"), link("up"))
    (alert,) = alerts(outcomes)  # the up message matches no rule: unhandled, as before
    assert alert.dedup_key == default_key(stage.rules["changed state to down"], "core-1")
    assert records(outcomes)[0]["correlation"] is None


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        ({"pairs": [{"rule": 1, "clear": "(up"}]}, "pairs.#1.clear: regex does not compile"),
        ({"pairs": [{"rule": 1, "clear": "up", "instance": "(x)"}]}, "named group"),
        ({"pairs": [{"rule": 0, "clear": "up"}]}, "pairs.#1.rule"),
        ({"pairs": [{"rule": 1, "clear": "up"}, {"rule": 1, "clear": "x"}]}, "paired twice"),
        ({"pairs": [{"rule": 1, "clear": "up", "clr": 1}]}, "clr: is not a correlation field"),
        ({"pair": []}, "pair: is not a correlation field"),
    ],
)
def test_bad_files_are_refused_with_the_reason(doc: object, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_correlation(doc, "c.yaml")
