"""OID prefix index: a trie of nested dicts, one lookup per event arc.

Cost per event is the depth of the event OID, whatever the number of
oid_prefix rules (docs/reference/building-blocks.md §4: about 1 µs at 10k prefixes).
"""

from __future__ import annotations

from collections.abc import Iterable

from .candidates import Candidate, accepts
from .semantics import PreparedEvent


class _Node:
    __slots__ = ("children", "entries")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.entries: tuple[Candidate, ...] = ()


class OidTrie:
    """oid_prefix rules keyed by the arcs of their normalized ``trap_oid``."""

    def __init__(self, items: Iterable[tuple[str, Candidate]]) -> None:
        self._root = _Node()
        self.size = 0
        for oid, candidate in items:
            node = self._root
            for arc in oid.split("."):
                child = node.children.get(arc)
                if child is None:  # not setdefault: that builds a node per arc, used or not
                    child = node.children[arc] = _Node()
                node = child
            node.entries = tuple(sorted((*node.entries, candidate)))
            self.size += 1

    def best(self, event: PreparedEvent, bound: int) -> int:
        """Lowest accepted rank below ``bound`` among prefixes of the event OID."""
        if event.oid is None or not self.size:
            return bound
        node = self._root
        for arc in event.oid.split("."):
            child = node.children.get(arc)
            if child is None:
                break
            node = child
            for candidate in node.entries:
                if candidate.rank >= bound:
                    break
                if accepts(candidate, event):
                    bound = candidate.rank
                    break
        return bound
