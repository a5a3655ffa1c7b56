"""Why an event got the rule it got: the answer behind ``mutt rules test``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .model import Rule
from .semantics import PreparedEvent, Verdict, evaluate


@dataclass(frozen=True, slots=True)
class Explanation:
    """The winning rule and, for every rule ranked before it, why it lost.

    ``verdicts`` is in evaluation order and ends with the winner's own
    verdict when there is one; ``truncated`` counts verdicts left out by
    ``limit``. ``rule`` is what the indexed engine returned; the loop that
    wrote the verdicts must agree (``consistent``), which tests enforce.
    """

    rule: Rule | None
    verdicts: tuple[Verdict, ...]
    truncated: int = 0

    @property
    def consistent(self) -> bool:
        """True when the explanation's own winner is the engine's winner."""
        winner = self.verdicts[-1].rule if self.verdicts and self.verdicts[-1].matched else None
        return winner is self.rule

    def render(self) -> str:
        """Plain text, one line per rule, for a terminal."""
        lines = []
        for verdict in self.verdicts:
            mark = "MATCH" if verdict.matched else "no   "
            rule = verdict.rule
            lines.append(f"{mark} rule {rule.id} (priority {rule.priority}): {verdict.reason}")
        if self.truncated:
            lines.append(f"... {self.truncated} more non-matching rules not shown")
        if self.rule is None:
            lines.append("=> no rule matched: the event is unhandled")
        else:
            lines.append(f"=> rule {self.rule.id}, team {self.rule.team_assignment}")
        if not self.consistent:
            lines.append("!! the indexed engine disagrees with the rule-by-rule check: report this")
        return "\n".join(lines)


def explain_rules(
    ranked: Sequence[Rule], event: PreparedEvent, engine_rule: Rule | None, limit: int | None
) -> Explanation:
    """Walk ``ranked`` (all rules, inactive too) until the first match."""
    verdicts: list[Verdict] = []
    misses = 0
    for rule in ranked:
        verdict = evaluate(rule, event)
        if verdict.matched:
            verdicts.append(verdict)
            break
        misses += 1
        if limit is None or misses <= limit:
            verdicts.append(verdict)
    shown_misses = sum(1 for v in verdicts if not v.matched)
    return Explanation(engine_rule, tuple(verdicts), misses - shown_misses)
