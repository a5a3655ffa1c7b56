"""``RuleSet``: the compiled, indexed rule engine the alert function runs.

Build once per rule load; then each event costs one trie walk, one
Aho-Corasick pass (contains needles and regex literals), RE2 runs of only
the regexes whose required literals all occur, and one FilteredRE2 scan
per shard of the few regexes without a provable literal.
Every index returns candidates as ranks (position in (priority, id) order);
the lowest rank whose remaining conditions hold wins, which is exactly the
first match of the reference loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .candidates import message_candidate, oid_candidate
from .explain import Explanation, explain_rules
from .literal_index import LiteralIndex
from .literal_scan import LiteralScan
from .literals import Requirement, prefilter_text, required_literals
from .model import MatchType, Rule, RuleError, validate_rule
from .oid_trie import OidTrie
from .regex_prefilter import RegexPrefilter
from .regex_shards import DEFAULT_SHARD_SIZE, RegexShards
from .semantics import EventLike, PreparedEvent

# Below this many active regexes one FilteredRE2 (a single C++ call) beats the
# literal prefilter's extra Aho-Corasick pass; above it the prefilter wins and
# keeps winning (bench/rules_bench.py: crossover between ~350 and ~1,000).
AUTO_PREFILTER_MIN_REGEXES = 500


# Patterns -> their required literals, in the same order: one call per build, so a
# caller can answer from a shared store in one round trip (functions/alert/literal_cache.py).
Analyse = Callable[[Sequence[str]], Sequence[tuple[Requirement, ...]]]


def analyse_each(patterns: Sequence[str]) -> list[tuple[Requirement, ...]]:
    """The default ``Analyse``: ``required_literals`` (cached per process) of each pattern."""
    return [required_literals(p) for p in patterns]


@dataclass(frozen=True, slots=True)
class _Options:
    regex_shard_size: int
    prefilter_regexes: bool | None
    analyse: Analyse


@dataclass(frozen=True, slots=True)
class RuleSetStats:
    """Sizes of the compiled indexes, for logs and ``/metrics``."""

    rules: int
    active: int
    needles: int
    oid_prefixes: int
    regexes: int
    regex_literals: int
    sharded_regexes: int
    regex_shards: int
    unfiltered_regexes: int
    rejected: int
    build_seconds: float


class RuleSet:
    """Immutable after ``compile``; safe to share between threads."""

    def __init__(
        self,
        rules: tuple[Rule, ...],
        active: tuple[Rule, ...],
        rejected: tuple[RuleError, ...],
        indexes: tuple[OidTrie, LiteralScan, LiteralIndex, RegexPrefilter, RegexShards],
        build_seconds: float,
        options: _Options,
    ) -> None:
        self.rules = rules
        self.rejected = rejected
        # what it was compiled with, so a stored copy is rebuilt the same way (stored.py)
        self.regex_shard_size = options.regex_shard_size
        self.prefilter_regexes = options.prefilter_regexes
        self._active = active
        self._trie, self._scan, self._literals, self._prefilter, self._shards = indexes
        self.stats = RuleSetStats(
            rules=len(rules),
            active=len(active),
            needles=self._literals.size,
            oid_prefixes=self._trie.size,
            regexes=self._prefilter.size + self._shards.size,
            regex_literals=self._prefilter.literals,
            sharded_regexes=self._shards.size,
            regex_shards=self._shards.shards,
            unfiltered_regexes=self._shards.unfiltered,
            rejected=len(rejected),
            build_seconds=build_seconds,
        )

    @classmethod
    def compile(
        cls,
        rules: Iterable[Rule],
        *,
        regex_shard_size: int = DEFAULT_SHARD_SIZE,
        prefilter_regexes: bool | None = None,
        analyse: Analyse = analyse_each,
        rejected: Iterable[RuleError] = (),
    ) -> RuleSet:
        """Index ``rules``; a duplicate id or a pattern RE2 refuses is rejected, not fatal.

        ``prefilter_regexes``: ``None`` (auto) uses the literal prefilter when
        there are more than ``AUTO_PREFILTER_MIN_REGEXES`` active regexes;
        ``False`` sends every regex to FilteredRE2 shards, ``True`` every
        regex with a provable literal to the prefilter. ``analyse`` gives the
        patterns' required literals, asked once and only when the prefilter is used.
        ``rejected``: errors found before (a stored index's), listed first.
        """
        options = _Options(regex_shard_size, prefilter_regexes, analyse)
        return cls._compile(list(rules), list(rejected), options, time.perf_counter())

    @classmethod
    def from_rows(
        cls,
        rows: Iterable[Mapping[str, Any]],
        *,
        regex_shard_size: int = DEFAULT_SHARD_SIZE,
        prefilter_regexes: bool | None = None,
        analyse: Analyse = analyse_each,
    ) -> RuleSet:
        """Validate raw rows (DB or YAML) and compile; invalid rows land in ``rejected``."""
        started = time.perf_counter()
        valid: list[Rule] = []
        errors: list[RuleError] = []
        for number, row in enumerate(rows, 1):
            try:
                valid.append(validate_rule(row, where=f"#{number}"))
            except RuleError as exc:
                errors.append(exc)
        options = _Options(regex_shard_size, prefilter_regexes, analyse)
        return cls._compile(valid, errors, options, started)

    @classmethod
    def _compile(
        cls, rules: list[Rule], errors: list[RuleError], options: _Options, started: float
    ) -> RuleSet:
        seen: set[int] = set()
        accepted: list[Rule] = []
        for rule in rules:
            if rule.id in seen:
                errors.append(RuleError(str(rule.id), [("id", "duplicate rule id")]))
                continue
            seen.add(rule.id)
            accepted.append(rule)
        accepted.sort(key=lambda r: r.rank)
        active = [r for r in accepted if r.is_active]

        regexes = [r for r in active if r.match_type is MatchType.REGEX]
        prefilter = options.prefilter_regexes
        if prefilter is None:
            prefilter = len(regexes) > AUTO_PREFILTER_MIN_REGEXES
        analysed: dict[str, tuple[Requirement, ...]] = {}
        if prefilter:
            patterns = sorted({r.match_string or "" for r in regexes})
            analysed = dict(zip(patterns, options.analyse(patterns), strict=True))
        oids, needles, prefiltered, sharded = [], [], [], []
        for rank, rule in enumerate(active):
            if rule.match_type is MatchType.OID_PREFIX:
                oids.append((rule.trap_oid or "", oid_candidate(rank, rule)))
            if rule.match_type is MatchType.REGEX:
                pattern = rule.match_string or ""
                literals = analysed.get(pattern, ())
                if literals:  # RE2 compiles it when an event first needs it (Rule.regex)
                    prefiltered.append((literals, message_candidate(rank, rule), rule))
                else:
                    sharded.append((pattern, message_candidate(rank, rule)))
            elif rule.match_string is not None:  # Rule.needle, uncached: caching it
                # grows the dict of each rule by 400 bytes (2.6 MB at 10,000 rules)
                needles.append((rule.match_string.lower(), message_candidate(rank, rule)))
        shards = RegexShards(sharded, options.regex_shard_size)
        if shards.rejected:  # drop refused rules everywhere so answers stay consistent
            refused = {active[c.rank].id for c, _ in shards.rejected}
            errors.extend(
                RuleError(str(active[c.rank].id), [("match_string", why)])
                for c, why in shards.rejected
            )
            kept = [r for r in accepted if r.id not in refused]
            return cls._compile(kept, errors, options, started)
        scan = LiteralScan()
        needle_index = LiteralIndex(needles, scan)
        regex_index = RegexPrefilter(prefiltered, scan)
        scan.freeze()
        indexes = (OidTrie(oids), scan, needle_index, regex_index, shards)
        built = time.perf_counter() - started
        return cls(tuple(accepted), tuple(active), tuple(errors), indexes, built, options)

    def __len__(self) -> int:
        return len(self.rules)

    def match(self, event: EventLike) -> Rule | None:
        """The first rule in (priority, id) order that matches ``event``, or ``None``."""
        prepared = PreparedEvent(event)
        bound = len(self._active)
        bound = self._trie.best(prepared, bound)
        lower = prepared.lower
        text = prefilter_text(lower)
        in_lower, in_text = self._scan.present(lower, text)
        bound = self._literals.best(prepared, in_lower, bound)
        bound = self._prefilter.best(prepared, text, in_text, bound)
        bound = self._shards.best(prepared, bound)
        return self._active[bound] if bound < len(self._active) else None

    def explain(self, event: EventLike, *, limit: int | None = None) -> Explanation:
        """The winner and why each better-ranked rule (inactive ones too) did not match.

        ``limit`` caps the non-matching verdicts listed (the rest are counted).
        """
        prepared = PreparedEvent(event)
        return explain_rules(self.rules, prepared, self.match(event), limit)
