"""The plain priority-ordered loop: the correctness and speed baseline.

This is v2.5's algorithm (first match in rank order) with the fixed
semantics of ``semantics.rule_matches``. It costs one test per rule per
event, which is what the indexed ``RuleSet`` must beat and must agree with.
"""

from __future__ import annotations

from collections.abc import Iterable

from .model import Rule
from .semantics import EventLike, PreparedEvent, rule_matches


class ReferenceMatcher:
    """Rules sorted once by (priority, id); ``match`` walks them in order."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules = tuple(sorted((r for r in rules if r.is_active), key=lambda r: r.rank))

    def match(self, event: EventLike) -> Rule | None:
        """The first rule in rank order that matches, or ``None``."""
        prepared = PreparedEvent(event)
        for rule in self.rules:
            if rule_matches(rule, prepared):
                return rule
        return None


def reference_match(rules: Iterable[Rule], event: EventLike) -> Rule | None:
    """One-shot reference answer (sorts on every call: for tests, not hot paths)."""
    return ReferenceMatcher(rules).match(event)
