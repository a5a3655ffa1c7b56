"""Substring index: every lower-cased needle, found by the shared literal scan.

``LiteralScan`` finds every needle the message contains in one pass, so the
cost is the message length plus the hits, not the number of contains rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Set

from .candidates import Candidate, accepts
from .literal_scan import LiteralScan
from .semantics import PreparedEvent


class LiteralIndex:
    """Needle -> its candidates in rank order (rules may share a needle)."""

    def __init__(self, items: Iterable[tuple[str, Candidate]], scan: LiteralScan) -> None:
        groups: dict[int, list[Candidate]] = {}
        for needle, candidate in items:
            groups.setdefault(scan.number(needle), []).append(candidate)
        self.size = len(groups)
        self._values = {number: tuple(sorted(group)) for number, group in groups.items()}
        self._needles = frozenset(groups)

    def best(self, event: PreparedEvent, present: Set[int], bound: int) -> int:
        """Lowest accepted rank below ``bound`` among needles in the message.

        ``present``: the scan's numbers found in the lower-cased message.
        """
        values = self._values
        for number in self._needles.intersection(present):
            for candidate in values[number]:
                if candidate.rank >= bound:
                    break
                if accepts(candidate, event):
                    bound = candidate.rank
                    break
        return bound
