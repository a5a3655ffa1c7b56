"""The compiled rule index in Redis: loaded when it is exactly the rules, rebuilt when not.

Through ``RuleCache`` (what the alert function runs), on this session's
PostgreSQL schema and this test's Redis namespace.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import orjson
import pg8000.native
import pytest
import redis

from functions.alert.cache import RuleCache, bump_version
from functions.alert.index_cache import index_key
from shared.config import Settings
from shared.db.connection import connect_pg
from tests.support.factories import event

REGEXES = 600  # above AUTO_PREFILTER_MIN_REGEXES: the analyses travel in the index too
TARGET = r"widget\d+ jammed on (?:belt|line) \d+"
MESSAGE = "widget42 jammed on belt 7"


@pytest.fixture
def rules(pg: pg8000.native.Connection) -> Iterator[None]:
    """600 regex rules (TARGET first, team NetOps) and one contains rule."""
    patterns = [TARGET] + [rf"gizmo{i}x\d+ failed on port \d+" for i in range(REGEXES - 1)]
    pg.run(
        "INSERT INTO alert_rules (id, match_type, match_string, priority, prod_handling,"
        " dev_handling, team_assignment)"
        " SELECT ordinality::int, 'regex', p, 1 + ordinality::int, 'Page_only', 'Ticket_only',"
        " 'NetOps' FROM unnest(CAST(:patterns AS text[])) WITH ORDINALITY AS t(p, ordinality)",
        patterns=patterns,
    )
    pg.run(
        "INSERT INTO alert_rules (id, match_type, match_string, priority, prod_handling,"
        " dev_handling, team_assignment)"
        " VALUES (5000, 'contains', 'jammed', 5000, 'Ticket_only', 'Ticket_only', 'Floor')"
    )
    yield
    pg.run("DELETE FROM alert_rules")


def _cache(settings: Settings, r: redis.Redis, namespace: str) -> RuleCache:
    url, schema = settings.database_url or "", settings.database_schema
    return RuleCache(lambda: connect_pg(url, schema), r, namespace, check_seconds=0)


def _winner(cache: RuleCache) -> tuple[int, str] | None:
    rule = cache.current().rules.match(event(1, MESSAGE))
    return (rule.id, rule.team_assignment) if rule else None


def _hmget_calls(r: redis.Redis) -> int:
    """HMGET commands the server has run (the literal analyses are read with one)."""
    return int(r.info("commandstats").get("cmdstat_hmget", {}).get("calls", 0))


def _split(raw: bytes) -> tuple[bytes, dict[str, object]]:
    digest, _, data = raw.partition(b"\n")
    doc: dict[str, object] = orjson.loads(data)
    return digest, doc


@pytest.mark.usefixtures("rules")
def test_the_first_start_stores_the_index_and_the_next_loads_it_instead_of_building(
    settings: Settings, r: redis.Redis, namespace: str
) -> None:
    first = _cache(settings, r, namespace)
    first.warm()
    key = index_key(namespace)
    assert r.exists(key)
    assert 0 < r.ttl(key) <= 30 * 24 * 3600

    before = _hmget_calls(r)
    second = _cache(settings, r, namespace)
    second.warm()
    assert _hmget_calls(r) == before  # no analysis asked for: nothing was built
    assert _winner(first) == _winner(second) == (1, "NetOps")

    # Proof it is the stored index that answers: a well-shaped change to it is
    # believed (Redis is trusted, like the streams), while PostgreSQL is unchanged.
    digest, doc = _split(r.get(key) or b"")
    rows = doc["rules"]
    assert isinstance(rows, list)
    target = next(row for row in rows if row[0] == 1)
    target[8] = "FromTheIndex"
    r.set(key, digest + b"\n" + orjson.dumps(doc))
    assert _winner(_cache(settings, r, namespace)) == (1, "FromTheIndex")


@pytest.mark.usefixtures("rules")
def test_a_rule_change_is_never_served_from_the_old_index(
    settings: Settings, r: redis.Redis, namespace: str, pg: pg8000.native.Connection
) -> None:
    running = _cache(settings, r, namespace)
    running.warm()
    old_digest, _ = _split(r.get(index_key(namespace)) or b"")

    pg.run("UPDATE alert_rules SET team_assignment = 'Mechanics' WHERE id = 1")
    # A start before the version bump (or after an edit behind MUTT's back) reads
    # the rules as they are, as it always did: the index is named by their content.
    assert _winner(_cache(settings, r, namespace)) == (1, "Mechanics")
    new_digest, doc = _split(r.get(index_key(namespace)) or b"")
    assert new_digest != old_digest
    assert any(row[8] == "Mechanics" for row in doc["rules"])  # type: ignore[attr-defined]

    # The running instance reloads on the bump, from the index the start above stored.
    assert _winner(running) == (1, "NetOps")
    bump_version(r, namespace)
    assert _winner(running) == (1, "Mechanics")

    # Back to the first rules: the index of the second set is not theirs either.
    pg.run("UPDATE alert_rules SET team_assignment = 'NetOps' WHERE id = 1")
    pg.run("DELETE FROM alert_rules WHERE id = 1")
    assert _winner(_cache(settings, r, namespace)) == (5000, "Floor")


def _spoil_json(raw: bytes, change: Callable[[dict[str, object]], object]) -> bytes:
    digest, doc = _split(raw)
    change(doc)
    return digest + b"\n" + orjson.dumps(doc)


SPOILERS: dict[str, Callable[[bytes], bytes]] = {
    "garbled bytes": lambda raw: raw.partition(b"\n")[0] + b"\n\x00\xff garbage",
    "truncated": lambda raw: raw[: len(raw) // 2],
    "not an object": lambda raw: raw.partition(b"\n")[0] + b"\n[1, 2, 3]",
    "another format": lambda raw: _spoil_json(raw, lambda d: d.update(format=0)),
    "a rule field of the wrong type": lambda raw: _spoil_json(
        raw,
        lambda d: d["rules"][0].__setitem__(5, "high"),  # type: ignore[index]
    ),
    "an analysis missing": lambda raw: _spoil_json(
        raw,
        lambda d: d["analyses"].pop(TARGET),  # type: ignore[attr-defined]
    ),
    "no digest line": lambda raw: raw.partition(b"\n")[2],
    "another rule set's": lambda raw: b"0" * 64 + b"\n" + raw.partition(b"\n")[2],
}


@pytest.mark.usefixtures("rules")
@pytest.mark.parametrize("spoil", SPOILERS.values(), ids=SPOILERS.keys())
def test_a_stale_or_corrupt_index_is_ignored_rebuilt_and_replaced(
    settings: Settings, r: redis.Redis, namespace: str, spoil: Callable[[bytes], bytes]
) -> None:
    _cache(settings, r, namespace).warm()
    key = index_key(namespace)
    good = r.get(key) or b""
    r.set(key, spoil(good))

    before = _hmget_calls(r)
    cache = _cache(settings, r, namespace)
    cache.warm()
    assert _hmget_calls(r) == before + 1  # built: the analyses were asked for
    assert _winner(cache) == (1, "NetOps")
    assert r.get(key) == good  # and stored again, as it was
