"""Main regex index: required literals found by the shared scan, paired in C.

``literals.required_literals`` proves, per regex, a few requirements (sets
of literals, one of which every match contains), most selective first. The
literals of every regex's first two requirements go in the shared
``LiteralScan``. A regex is posted under each *pair* (literal of the first,
literal of the second requirement); a regex with one requirement pairs each
of its literals with itself. Per event, the scan gives the set of literals
present; for each present literal that starts a pair, whether any partner is
present comes from one C call (``present.isdisjoint(partners)``); only those
pairs' regexes survive.
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

from collections.abc import Iterable, Set
from itertools import filterfalse

from .candidates import Candidate, accepts
from .literal_scan import LiteralScan
from .literals import Requirement
from .model import Rule
from .semantics import PreparedEvent

Rest = tuple[tuple[str, ...], ...]  # requirements beyond the second, checked with ``in``


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
    """Regexes keyed by their required literals; ``best`` verifies survivors with RE2.

    Each entry keeps its ``Rule``, whose ``regex`` RE2 compiles the first time a
    survivor needs it: a compiled index restored from storage (``stored.py``)
    compiles no regex at start, and only the regexes events reach take memory.
    """

    def __init__(
        self, items: Iterable[tuple[tuple[Requirement, ...], Candidate, Rule]], scan: LiteralScan
    ) -> None:
        pairs: dict[int, dict[int, list[int]]] = {}
        literals: set[int] = set()
        self._entries: dict[int, tuple[Candidate, Rule, Rest]] = {}
        for requirements, candidate, rule in items:
            rank = candidate.rank
            rest = tuple(tuple(sorted(r)) for r in requirements[2:])
            self._entries[rank] = (candidate, rule, rest)
            firsts = [scan.number(x) for x in sorted(requirements[0])]
            literals.update(firsts)
            if len(requirements) == 1:
                for a in firsts:  # paired with itself: present whenever it is
                    pairs.setdefault(a, {}).setdefault(a, []).append(rank)
                continue
            seconds = [scan.number(x) for x in sorted(requirements[1])]
            literals.update(seconds)
            for a in firsts:
                table = pairs.setdefault(a, {})
                for b in seconds:
                    table.setdefault(b, []).append(rank)
        self.size = len(self._entries)
        self.literals = len(literals)
        # Exact frozensets, not a subclass: CPython's ``set.isdisjoint`` takes its
        # set-with-set path (iterate the smaller side, no iterator object) only
        # for exact sets; a subclass carrying the ranks cost 2-3x more per call.
        self._firsts = frozenset(pairs)
        self._partners = {a: frozenset(table) for a, table in pairs.items()}
        # the ranks of each pair, found from the partners set the filter lets through
        self._tables = {
            id(self._partners[a]): {b: tuple(ranks) for b, ranks in table.items()}
            for a, table in pairs.items()
        }

    def survivors(self, present: Set[int]) -> set[int]:
        """Ranks whose first two requirements each have a literal in ``present``."""
        found: set[int] = set()
        if not present:
            return found
        tables = self._tables
        starters = self._firsts.intersection(present)
        # C loop, no allocation per literal: only sets with a partner present come out.
        for partners in filterfalse(present.isdisjoint, map(self._partners.__getitem__, starters)):
            table = tables[id(partners)]
            for b in partners.intersection(present):
                found.update(table[b])
        return found

    def best(self, event: PreparedEvent, text: str, present: Set[int], bound: int) -> int:
        """Lowest accepted rank below ``bound`` among regexes matching the message.

        ``text``: the message's prefilter text; ``present``: the scan's numbers found in it.
        """
        if not self._entries:
            return bound
        found = self.survivors(present)
        if not found:
            return bound
        entries = self._entries
        for rank in sorted(found):
            if rank >= bound:
                break
            candidate, rule, rest = entries[rank]
            if (
                (not rest or _all_present(rest, text))
                and accepts(candidate, event)
                and rule.regex.search(event.data) is not None
            ):
                return rank
        return bound
