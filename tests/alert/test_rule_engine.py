"""RuleSet mechanics: index routing, FilteredRE2 sharding, stats, bench-sized agreement."""

from __future__ import annotations

from typing import Any

import pytest
import re2

from bench.rules_bench import Generator
from functions.alert.rules import ReferenceMatcher, RuleSet
from tests.support.rules import Plain, rule

_REAL_FILTER = re2.Filter


def test_regexes_are_routed_to_prefilter_or_shards() -> None:
    rules = [
        rule(1, match_type="regex", match_string=r"link \d+ down"),  # literal: prefilter
        rule(2, match_type="regex", match_string=r"^\S+$"),  # no literal: shards, unfiltered
        rule(3, match_type="regex", match_string=r"port [[:digit:]]+ up"),  # RE2-only: shards
        rule(4, match_string="cpu"),
        rule(5, match_type="oid_prefix", trap_oid="1.3.6", match_string="fan"),
        rule(6, match_type="regex", match_string="x", is_active=False),
    ]
    stats = RuleSet.compile(rules, prefilter_regexes=True).stats
    assert (stats.rules, stats.active) == (6, 5)
    assert (stats.regexes, stats.sharded_regexes, stats.regex_shards) == (3, 2, 1)
    assert stats.unfiltered_regexes == 1
    assert stats.needles == 2  # "cpu" and the oid_prefix rule's "fan"
    assert stats.oid_prefixes == 1
    assert stats.build_seconds >= 0


def test_auto_mode_prefilters_only_many_regexes() -> None:
    few = [rule(i, match_type="regex", match_string=f"word{i} x") for i in range(1, 11)]
    assert RuleSet.compile(few).stats.sharded_regexes == 10
    many = [rule(i, match_type="regex", match_string=f"word{i} x") for i in range(1, 600)]
    assert RuleSet.compile(many).stats.sharded_regexes == 0


def test_shards_follow_rank_order_and_size() -> None:
    rules = [rule(i, match_type="regex", match_string=rf"^w{i}\S*$") for i in range(1, 8)]
    ruleset = RuleSet.compile(rules, prefilter_regexes=False, regex_shard_size=3)
    assert ruleset.stats.regex_shards == 3
    for i in range(1, 8):
        got = ruleset.match(Plain(f"w{i}x", None, None))
        assert got is not None and got.id == i
    with pytest.raises(ValueError, match="shard_size"):
        RuleSet.compile(rules, prefilter_regexes=False, regex_shard_size=0)


class _SmallFilter:
    """A re2.Filter that, like the real one at ~10k patterns, fails when too big.

    Method names are the binding's.
    """

    limit = 2

    def __init__(self) -> None:
        self._inner = _REAL_FILTER()
        self._count = 0

    def Add(self, pattern: str, options: Any) -> int:
        self._count += 1
        return int(self._inner.Add(pattern, options))

    def Compile(self) -> None:
        if self._count > self.limit:
            raise re2.error("failed to compile Filter")
        self._inner.Compile()

    def Match(self, text: bytes, potential: bool = False) -> list[int] | None:
        return self._inner.Match(text, potential)  # type: ignore[no-any-return]


def test_a_shard_that_fails_to_compile_is_halved(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(re2, "Filter", _SmallFilter)
    rules = [rule(i, match_type="regex", match_string=rf"^v{i}\S*$") for i in range(1, 8)]
    ruleset = RuleSet.compile(rules, prefilter_regexes=False, regex_shard_size=7)
    assert not ruleset.rejected
    assert ruleset.stats.regex_shards >= 4
    assert all((m := ruleset.match(Plain(f"v{i}", None, None))) and m.id == i for i in range(1, 8))


def test_a_pattern_the_filter_refuses_is_rejected_everywhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_SmallFilter, "limit", 0)
    monkeypatch.setattr(re2, "Filter", _SmallFilter)
    rules = [rule(1, match_type="regex", match_string=r"^\S+$"), rule(2, match_string="ok")]
    ruleset = RuleSet.compile(rules)
    assert [(e.rule, e.field) for e in ruleset.rejected] == [("1", "match_string")]
    assert "could not compile" in ruleset.rejected[0].reason
    assert [r.id for r in ruleset.rules] == [2]
    got = ruleset.match(Plain("ok", None, None))
    assert got is not None and got.id == 2


def test_agrees_with_reference_on_bench_data() -> None:
    """3,000 generated rules, 300 events, every answer identical.

    The rule mix of docs/reference/building-blocks.md §4 (bench/data.py).
    """
    generator = Generator(seed=7)
    rules, triggers = generator.rules(3000)
    events = generator.events(300, triggers)
    ruleset = RuleSet.compile(rules, prefilter_regexes=True)
    reference = ReferenceMatcher(rules)
    answers = [(ruleset.match(e), reference.match(e)) for e in events]
    assert all(got is want for got, want in answers)
    assert sum(1 for got, _ in answers if got is not None) > 10  # hits happened


def test_empty_ruleset() -> None:
    ruleset = RuleSet.compile([])
    assert len(ruleset) == 0
    assert ruleset.match(Plain("anything", None, "1.3.6")) is None
