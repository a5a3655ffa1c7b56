"""Regex literal analyses shared through Redis: used when sound, ignored when not.

They serve a build of the rules. A start that finds the compiled index of the
same rules (``index_cache``) builds nothing, so the starts here that must build
drop that index first (``_building``).
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pg8000.native
import pytest
import redis

from functions.alert.cache import RuleCache
from functions.alert.index_cache import index_key
from functions.alert.literal_cache import cache_key
from functions.alert.rules.literals import required_literals
from shared.config import Settings
from shared.db.connection import connect_pg
from tests.support.factories import event

REGEXES = 600  # above AUTO_PREFILTER_MIN_REGEXES, so the literal prefilter (and the cache) is used
TARGET = r"widget\d+ jammed on (?:belt|line) \d+"


@pytest.fixture
def many_regexes(pg: pg8000.native.Connection) -> Iterator[list[str]]:
    """600 regex rules (one of them TARGET, at the best priority) in this session's schema."""
    patterns = [TARGET] + [rf"gizmo{i}x\d+ failed on port \d+" for i in range(REGEXES - 1)]
    pg.run(
        "INSERT INTO alert_rules (match_type, match_string, priority, prod_handling,"
        " dev_handling, team_assignment)"
        " SELECT 'regex', p, 1 + ordinality::int, 'Page_only', 'Ticket_only', 'NetOps'"
        " FROM unnest(CAST(:patterns AS text[])) WITH ORDINALITY AS t(p, ordinality)",
        patterns=patterns,
    )
    yield patterns
    pg.run("DELETE FROM alert_rules")


def _cache(settings: Settings, r: redis.Redis, namespace: str) -> RuleCache:
    url, schema = settings.database_url or "", settings.database_schema
    return RuleCache(lambda: connect_pg(url, schema), r, namespace)


def _building(settings: Settings, r: redis.Redis, namespace: str) -> RuleCache:
    """A cache whose next warm builds the rules: no compiled index to load instead."""
    r.delete(index_key(namespace))
    return _cache(settings, r, namespace)


def _hmget_calls(r: redis.Redis) -> int:
    """HMGET commands the server has run so far (tests run one at a time)."""
    return int(r.info("commandstats").get("cmdstat_hmget", {}).get("calls", 0))


def _matched(cache: RuleCache) -> str | None:
    rule = cache.current().rules.match(event(1, "widget42 jammed on belt 7"))
    return rule.match_string if rule else None


def test_a_cold_start_stores_every_analysis_and_the_next_reads_them(
    settings: Settings, r: redis.Redis, namespace: str, many_regexes: list[str]
) -> None:
    first = _cache(settings, r, namespace)
    first.warm()
    stored = r.hgetall(cache_key(namespace))
    assert {k.decode() for k in stored} == set(many_regexes)
    expected = [sorted(req) for req in required_literals(TARGET)]
    assert orjson.loads(stored[TARGET.encode()]) == expected

    second = _building(settings, r, namespace)
    second.warm()
    assert _matched(first) == _matched(second) == TARGET

    # Proof the next build reads the hash instead of the parser: a well-shaped entry
    # naming a literal the message lacks is believed (Redis is trusted, like the streams).
    r.hset(cache_key(namespace), TARGET, b'[["nowhere"]]')
    third = _building(settings, r, namespace)
    third.warm()
    assert _matched(third) != TARGET


def test_garbled_or_wrong_shaped_entries_are_analysed_again(
    settings: Settings, r: redis.Redis, namespace: str, many_regexes: list[str]
) -> None:
    key = cache_key(namespace)
    _cache(settings, r, namespace).warm()
    bad = {
        TARGET: b"{not json",
        many_regexes[1]: orjson.dumps([["ab"]]),  # shorter than any literal the analysis keeps
        many_regexes[2]: orjson.dumps([["UPPER"]]),  # literals are lower-cased
        many_regexes[3]: orjson.dumps([[]]),  # an empty requirement would match nothing
        many_regexes[4]: orjson.dumps({"a": 1}),
    }
    r.hset(key, mapping=bad)
    cache = _building(settings, r, namespace)
    cache.warm()
    assert _matched(cache) == TARGET  # the rule still fires: its entry was ignored
    for pattern in bad:
        again = orjson.loads(r.hget(key, pattern) or b"null")
        assert again == [sorted(req) for req in required_literals(pattern)]


def test_an_analysis_stored_by_other_code_is_never_read(
    settings: Settings, r: redis.Redis, namespace: str, many_regexes: list[str]
) -> None:
    """The key names the analysis code and Python: another version's entries are elsewhere."""
    other = f"{namespace}:rules:literals:cpython3.11:0000000000000000"
    assert other != cache_key(namespace)
    r.hset(other, TARGET, b'[["zzz"]]')  # well shaped, and wrong for TARGET
    cache = _cache(settings, r, namespace)
    cache.warm()
    assert _matched(cache) == TARGET


def test_few_regexes_use_no_analysis_and_no_redis_hash(
    settings: Settings, r: redis.Redis, namespace: str, pg: pg8000.native.Connection
) -> None:
    """Below the prefilter threshold the regexes go to FilteredRE2: nothing to analyse or store."""
    pg.run(
        "INSERT INTO alert_rules (match_type, match_string, prod_handling, dev_handling,"
        " team_assignment) VALUES ('regex', :p, 'Page_only', 'Ticket_only', 'NetOps')",
        p=TARGET,
    )
    try:
        cache = _cache(settings, r, namespace)
        before = _hmget_calls(r)
        cache.warm()
        assert _hmget_calls(r) == before  # not even a lookup
        assert _matched(cache) == TARGET
        assert not r.exists(cache_key(namespace))
    finally:
        pg.run("DELETE FROM alert_rules")
