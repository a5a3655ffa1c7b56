"""Main regex index: required literals in one Aho-Corasick automaton, paired in C.

``literals.required_literals`` proves, per regex, a few requirements (sets
of literals, one of which every match contains), most selective first. The
literals of every regex's first two requirements go in one automaton. A
regex is posted under each *pair* (literal of the first, literal of the
second requirement); a regex with one requirement pairs each of its
literals with itself. Per event, one pass finds the set of literals present; for
each present literal, the present literals it pairs with come from one C
call (``present.isdisjoint(pairs)``); only those pairs' regexes survive.
Survivors check their remaining requirements with ``in`` and then run RE2,
in rank order below the current bound, stopping at the first that matches
and passes its other conditions (FilteredRE2's AND semantics, exactly).

Why pairs: on word-like logs nearly every word of a message is some regex's
literal, and with a fixed vocabulary each word is a literal of more regexes
as the rule set grows. Posting every regex under single literals made an
event meet tens of postings at 10k rules and hundreds at 100k, each costing
Python work; a pair of literals rarely occurs by chance, so survivors stay
few and the per-event cost grows with the literals present in the message,
not with the number of rules (docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import filterfalse
from operator import itemgetter
from typing import Any

from ahocorasick_rs import AhoCorasick

from .candidates import Candidate, accepts
from .literals import Requirement, prefilter_text
from .semantics import PreparedEvent

_NUMBER = itemgetter(0)  # (literal number, start, end) -> literal number

Rest = tuple[tuple[str, ...], ...]  # requirements beyond the second, checked with ``in``


class _Partners(frozenset[int]):
    """The literals a literal pairs with, carrying the ranks of each pair.

    A frozenset so ``present.isdisjoint`` takes CPython's set-with-set path
    (it iterates the smaller side, with no iterator object).
    """

    table: dict[int, tuple[int, ...]]


_NO_PARTNERS = _Partners()
_NO_PARTNERS.table = {}


def _partners(table: dict[int, list[int]] | None) -> _Partners:
    if not table:  # most literals only ever come second: share one empty set
        return _NO_PARTNERS
    partners = _Partners(table)
    partners.table = {b: tuple(ranks) for b, ranks in table.items()}
    return partners


def _all_present(rest: Rest, text: str) -> bool:
    """True when ``text`` holds at least one literal of every requirement in ``rest``."""
    for requirement in rest:
        for literal in requirement:
            if literal in text:
                break
        else:
            return False
    return True


class RegexPrefilter:
    """Regexes keyed by their required literals; ``best`` verifies survivors with RE2."""

    def __init__(self, items: Iterable[tuple[tuple[Requirement, ...], Candidate, Any]]) -> None:
        numbers: dict[str, int] = {}
        pairs: dict[int, dict[int, list[int]]] = {}
        self._entries: dict[int, tuple[Candidate, Any, Rest]] = {}
        for requirements, candidate, regex in items:
            rank = candidate.rank
            rest = tuple(tuple(sorted(r)) for r in requirements[2:])
            self._entries[rank] = (candidate, regex, rest)
            firsts = [numbers.setdefault(x, len(numbers)) for x in sorted(requirements[0])]
            if len(requirements) == 1:
                for a in firsts:  # paired with itself: present whenever it is
                    pairs.setdefault(a, {}).setdefault(a, []).append(rank)
                continue
            seconds = [numbers.setdefault(x, len(numbers)) for x in sorted(requirements[1])]
            for a in firsts:
                table = pairs.setdefault(a, {})
                for b in seconds:
                    table.setdefault(b, []).append(rank)
        self.size = len(self._entries)
        self.literals = len(numbers)
        self._partners = [_partners(pairs.get(n)) for n in range(len(numbers))]
        self._automaton: Any = AhoCorasick(list(numbers)) if numbers else None

    def survivors(self, text: str) -> set[int]:
        """Ranks whose first two requirements each have a literal in ``text`` (prefilter text)."""
        hits = self._automaton.find_matches_as_indexes(text, overlapping=True)
        if not hits:
            return set()
        present = set(map(_NUMBER, hits))
        found: set[int] = set()
        # C loop, no allocation per literal: only tables with a partner present come out.
        for partners in filterfalse(present.isdisjoint, map(self._partners.__getitem__, present)):
            table = partners.table
            for b in present.intersection(partners):
                found.update(table[b])
        return found

    def best(self, event: PreparedEvent, bound: int) -> int:
        """Lowest accepted rank below ``bound`` among regexes matching the message."""
        if self._automaton is None:
            return bound
        text = prefilter_text(event.lower)
        found = self.survivors(text)
        if not found:
            return bound
        entries = self._entries
        for rank in sorted(found):
            if rank >= bound:
                break
            candidate, regex, rest = entries[rank]
            if (
                (not rest or _all_present(rest, text))
                and accepts(candidate, event)
                and regex.search(event.data) is not None
            ):
                return rank
        return bound
