"""Substring index: every lower-cased needle in one Aho-Corasick automaton.

One pass over the message finds every needle it contains, so the cost is
the message length plus the hits, not the number of contains rules
(perf-limits section 4: about 4 µs at 10k needles).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import ahocorasick

from .candidates import Candidate, accepts
from .semantics import PreparedEvent


class LiteralIndex:
    """Needle -> its candidates in rank order (rules may share a needle)."""

    def __init__(self, items: Iterable[tuple[str, Candidate]]) -> None:
        groups: dict[str, list[Candidate]] = {}
        for needle, candidate in items:
            groups.setdefault(needle, []).append(candidate)
        self.size = len(groups)
        self._automaton: Any = None
        if groups:
            automaton = ahocorasick.Automaton()
            for needle, candidates in groups.items():
                ordered = tuple(sorted(candidates))
                automaton.add_word(needle, (ordered[0].rank, ordered))
            automaton.make_automaton()
            self._automaton = automaton

    def best(self, event: PreparedEvent, bound: int) -> int:
        """Lowest accepted rank below ``bound`` among needles in the message."""
        if self._automaton is None:
            return bound
        for _end, (first, candidates) in self._automaton.iter(event.lower):
            if first >= bound:
                continue
            for candidate in candidates:
                if candidate.rank >= bound:
                    break
                if accepts(candidate, event):
                    bound = candidate.rank
                    break
        return bound
