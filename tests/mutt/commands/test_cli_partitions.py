"""Operator commands with stream partitions: they see every partition, entries stay in theirs."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import redis

from shared.broker.keys import Keys
from shared.broker.streams import Entry, dead_letter_fields, ensure_group
from shared.config import Settings
from shared.envelope import encode
from tests.support.cli import Cli, in_process
from tests.support.factories import accepted_event, alert_event

PARTITIONS = 3


@pytest.fixture
def parted(settings: Settings) -> Settings:
    return settings.model_copy(update={"partitions": PARTITIONS})


@pytest.fixture
def pkeys(parted: Settings) -> Keys:
    return Keys(parted.namespace, partitions=PARTITIONS)


@pytest.fixture
def cli(
    parted: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Cli:
    return in_process(parted, monkeypatch, capsys)


def _dead(r: redis.Redis, part: Keys, stage: str, ce: bytes, entry_id: str) -> None:
    fields: dict[Any, Any] = dead_letter_fields(
        Entry("1-1", {b"ce": ce}, 3), stage=stage, origin=part.events, reason="boom"
    )
    r.xadd(part.dlq(stage), fields, id=entry_id)


def test_dlq_commands_see_every_partition_and_replay_within_it(
    r: redis.Redis, pkeys: Keys, cli: Cli
) -> None:
    p0, p2 = pkeys.partition(0), pkeys.partition(2)
    _dead(r, p0, "alert", encode(accepted_event(1)), "1000-0")
    _dead(r, p2, "alert", encode(accepted_event(3)), "1000-0")  # the same id as in partition 0
    _dead(r, p2, "alert", encode(accepted_event(2)), "2000-0")

    listed = [orjson.loads(x) for x in cli("dlq", "list", "--json").out.splitlines()]
    assert [(d["id"], d["partition"]) for d in listed] == [
        ("2000-0@2", 2),
        ("1000-0@0", 0),
        ("1000-0@2", 2),
    ]
    assert "dead letters: alert 3" in cli("dlq", "list", "--stage", "alert").out

    both = cli("dlq", "show", "1000-0").out
    assert "id:         1000-0@0\n" in both and "id:         1000-0@2\n" in both
    assert "1000-0@2" not in cli("dlq", "show", "1000-0@0").out
    unknown = cli("dlq", "show", "1000-0@7")
    assert unknown.code != 0 and "no partition 7" in unknown.err

    ambiguous = cli("dlq", "replay", "--ids", "1000-0")
    assert ambiguous.code != 0 and "alert 1000-0@2" in ambiguous.err
    done = cli("dlq", "replay", "--ids", "2000-0@2", "1000-0@0")
    assert done.code == 0, done.err
    assert "replayed 2 entries" in done.out
    assert r.xlen(p2.events) == 1 and r.xlen(p0.events) == 1
    assert r.xlen(pkeys.partition(1).events) == 0
    assert r.xlen(p2.dlq("alert")) == 1 and r.xlen(p0.dlq("alert")) == 0

    assert cli("dlq", "purge", "--all", "--yes").out.strip() == "deleted 1 dead letters"


def test_status_lists_each_partition_and_sums_dead_letters(
    r: redis.Redis, pkeys: Keys, cli: Cli
) -> None:
    for part in pkeys.all_partitions():
        ensure_group(r, part.events, "alert")
        r.xadd(part.events, {b"ce": encode(accepted_event(part.index))})
        _dead(r, part, "forward", encode(alert_event(part.index)), "*")

    doc = orjson.loads(cli("status", "--json").out)
    assert doc["partitions"] == PARTITIONS
    events = [s for s in doc["streams"] if s["name"] == "events"]
    assert [(s["partition"], s["length"]) for s in events] == [(0, 1), (1, 1), (2, 1)]
    assert [s["key"] for s in events] == [p.events for p in pkeys.all_partitions()]
    assert doc["dlq"]["forward"] == PARTITIONS

    text = cli("status").out
    assert "3 stream partitions" in text
    assert [line.split()[:3] for line in text.splitlines() if line.startswith("events ")] == [
        ["events", "#0", "1"],
        ["events", "#1", "1"],
        ["events", "#2", "1"],
    ]
