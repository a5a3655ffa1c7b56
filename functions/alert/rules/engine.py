"""``RuleSet``: the compiled, indexed rule engine the alert function runs.

Build once per rule load; then each event costs one trie walk, one
Aho-Corasick pass and a few FilteredRE2 scans, however many rules exist.
Every index returns candidates as ranks (position in (priority, id) order);
the lowest rank whose remaining conditions hold wins, which is exactly the
first match of the reference loop.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .candidates import message_candidate, oid_candidate
from .explain import Explanation, explain_rules
from .literal_index import LiteralIndex
from .model import MatchType, Rule, RuleError, validate_rule
from .oid_trie import OidTrie
from .regex_index import DEFAULT_SHARD_SIZE, RegexIndex
from .semantics import EventLike, PreparedEvent


@dataclass(frozen=True, slots=True)
class RuleSetStats:
    """Sizes of the compiled indexes, for logs and ``/metrics``."""

    rules: int
    active: int
    needles: int
    oid_prefixes: int
    regexes: int
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
        indexes: tuple[OidTrie, LiteralIndex, RegexIndex],
        build_seconds: float,
    ) -> None:
        self.rules = rules
        self.rejected = rejected
        self._active = active
        self._trie, self._literals, self._regexes = indexes
        self.stats = RuleSetStats(
            rules=len(rules),
            active=len(active),
            needles=self._literals.size,
            oid_prefixes=self._trie.size,
            regexes=self._regexes.size,
            regex_shards=self._regexes.shards,
            unfiltered_regexes=self._regexes.unfiltered,
            rejected=len(rejected),
            build_seconds=build_seconds,
        )

    @classmethod
    def compile(
        cls, rules: Iterable[Rule], *, regex_shard_size: int = DEFAULT_SHARD_SIZE
    ) -> RuleSet:
        """Index ``rules``; a duplicate id or a pattern RE2 refuses is rejected, not fatal."""
        return cls._compile(rules, [], regex_shard_size)

    @classmethod
    def from_rows(
        cls, rows: Iterable[Mapping[str, Any]], *, regex_shard_size: int = DEFAULT_SHARD_SIZE
    ) -> RuleSet:
        """Validate raw rows (DB or YAML) and compile; invalid rows land in ``rejected``."""
        valid: list[Rule] = []
        errors: list[RuleError] = []
        for number, row in enumerate(rows, 1):
            try:
                valid.append(validate_rule(row, where=f"#{number}"))
            except RuleError as exc:
                errors.append(exc)
        return cls._compile(valid, errors, regex_shard_size)

    @classmethod
    def _compile(
        cls, rules: Iterable[Rule], errors: list[RuleError], shard_size: int
    ) -> RuleSet:
        started = time.perf_counter()
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

        oids, needles, patterns = [], [], []
        for rank, rule in enumerate(active):
            if rule.match_type is MatchType.OID_PREFIX:
                oids.append((rule.trap_oid or "", oid_candidate(rank, rule)))
            if rule.match_type is MatchType.REGEX:
                patterns.append((rule.match_string or "", message_candidate(rank, rule)))
            elif rule.needle is not None:
                needles.append((rule.needle, message_candidate(rank, rule)))
        regexes = RegexIndex(patterns, shard_size)
        if regexes.rejected:  # drop refused rules everywhere so answers stay consistent
            refused = {active[c.rank].id for c, _ in regexes.rejected}
            errors.extend(
                RuleError(str(active[c.rank].id), [("match_string", why)])
                for c, why in regexes.rejected
            )
            kept = [r for r in accepted if r.id not in refused]
            return cls._compile(kept, errors, shard_size)
        indexes = (OidTrie(oids), LiteralIndex(needles), regexes)
        return cls(
            tuple(accepted),
            tuple(active),
            tuple(errors),
            indexes,
            time.perf_counter() - started,
        )

    def __len__(self) -> int:
        return len(self.rules)

    def match(self, event: EventLike) -> Rule | None:
        """The first rule in (priority, id) order that matches ``event``, or ``None``."""
        prepared = PreparedEvent(event)
        bound = len(self._active)
        bound = self._trie.best(prepared, bound)
        bound = self._literals.best(prepared, bound)
        bound = self._regexes.best(prepared, bound)
        return self._active[bound] if bound < len(self._active) else None

    def explain(self, event: EventLike, *, limit: int | None = None) -> Explanation:
        """The winner and why each better-ranked rule (inactive ones too) did not match.

        ``limit`` caps the non-matching verdicts listed (the rest are counted).
        """
        prepared = PreparedEvent(event)
        return explain_rules(self.rules, prepared, self.match(event), limit)
