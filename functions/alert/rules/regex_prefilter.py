"""Main regex index: required literals in one Aho-Corasick automaton.

``literals.required_literals`` proves, per regex, a few requirements (sets
of literals, one of which every match contains). All those literals go in
one automaton whose values are the ranks needing them. Per event, one pass
finds the literals present; ``Counter`` (C code) tallies, per regex, how
many of its requirements were met; only regexes with all met (FilteredRE2's
AND semantics) and a rank below the current bound run RE2, in rank order,
stopping at the first that matches and passes its other conditions.
Unlike FilteredRE2 shards, the cost does not grow with the number of
shards: it grows with the literals present in the message.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from itertools import chain
from operator import itemgetter
from typing import Any

import ahocorasick

from .candidates import Candidate, accepts
from .literals import Requirement, prefilter_text
from .semantics import PreparedEvent

_VALUE = itemgetter(1)  # (end, (literal number, ranks)) -> (literal number, ranks)


class RegexPrefilter:
    """Regexes keyed by their required literals; ``best`` verifies survivors with RE2."""

    def __init__(self, items: Iterable[tuple[tuple[Requirement, ...], Candidate, Any]]) -> None:
        postings: dict[str, list[int]] = {}
        self._needed: dict[int, int] = {}
        self._entries: dict[int, tuple[Candidate, Any]] = {}
        for requirements, candidate, regex in items:
            rank = candidate.rank
            self._needed[rank] = len(requirements)
            self._entries[rank] = (candidate, regex)
            for requirement in requirements:
                for literal in requirement:
                    postings.setdefault(literal, []).append(rank)
        self.size = len(self._entries)
        self.literals = len(postings)
        self._automaton: Any = None
        if postings:
            automaton = ahocorasick.Automaton()
            for number, (literal, ranks) in enumerate(postings.items()):
                automaton.add_word(literal, (number, tuple(ranks)))
            automaton.make_automaton()
            self._automaton = automaton

    def best(self, event: PreparedEvent, bound: int) -> int:
        """Lowest accepted rank below ``bound`` among regexes matching the message."""
        if self._automaton is None:
            return bound
        hits = self._automaton.iter(prefilter_text(event.lower))
        present: dict[int, tuple[int, ...]] = dict(map(_VALUE, hits))  # deduplicated
        if not present:
            return bound
        # A requirement met by two of its literals counts twice: that can only
        # let an extra regex through to RE2, never keep a matching one out.
        counts = Counter(chain.from_iterable(present.values()))
        needed = self._needed
        survivors = sorted(r for r, n in counts.items() if r < bound and n >= needed[r])
        for rank in survivors:
            candidate, regex = self._entries[rank]
            if accepts(candidate, event) and regex.search(event.data) is not None:
                return rank
        return bound
