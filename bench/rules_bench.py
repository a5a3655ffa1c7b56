"""Events/s of the indexed ``RuleSet`` against the reference loop.

Run: ``python -m bench.rules_bench [--sizes 100,1000,10000,100000]``.
Data follows docs/reference/building-blocks.md §4: ~240-byte messages from a 4,000-word
vocabulary, a trap OID on every event, rules split evenly between 2-word
contains phrases, six regex templates and OID prefixes, priorities drawn at
random (so kinds interleave and ties happen), 10% of rules with a severity
condition, and 10% of events carrying some rule's trigger. Each timing is
capped (``--seconds``); the reference loop only runs up to ``--reference-max``
rules, beyond which it prints n/a. The "filter-only" column is the same
engine with every regex in FilteredRE2 shards (the approach of
docs/reference/building-blocks.md §4) instead of the literal prefilter; the default (auto) picks
FilteredRE2 for up to 500 regexes and the prefilter above. Answers are cross-checked; any
mismatch makes the exit status 1. Progress goes to stderr, the table to stdout.
"""

from __future__ import annotations

import argparse
import random
import string
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bench.data import regex_rule
from functions.alert.rules import ReferenceMatcher, Rule, RuleSet
from shared.models import Handling, Severity

VOCABULARY_SIZE = 4000
MESSAGE_BYTES = 240
TRIGGER_SHARE = 0.10
SEVERITY_SHARE = 0.10
MAX_EVENTS = 20_000


@dataclass(frozen=True, slots=True)
class BenchEvent:
    """The three fields matching reads; no pydantic cost in the timed loop."""

    message: str
    severity: Severity | None
    trap_oid: str | None


Trigger = Callable[[], tuple[str, str | None]]  # -> (text to inject, OID to use)


def _text_trigger(make: Callable[[], str]) -> Trigger:
    return lambda: (make(), None)


def _phrase_trigger(text: str) -> Trigger:
    return lambda: (text, None)


def _oid_trigger(oid: str) -> Trigger:
    return lambda: ("", f"{oid}.1.2")


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class Generator:
    """Deterministic rules and events (one seed per run)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        words: set[str] = set()
        while len(words) < VOCABULARY_SIZE:
            length = self.rng.randint(3, 9)
            words.add("".join(self.rng.choices(string.ascii_lowercase, k=length)))
        self.words = sorted(words)

    def word(self) -> str:
        return self.rng.choice(self.words)

    def regex(self) -> tuple[str, Callable[[], str]]:
        """One of six templates and a function making text it matches."""
        return regex_rule(self.rng, self.word)

    def rules(self, count: int) -> tuple[list[Rule], list[Trigger]]:
        """``count`` rules and, per rule, a trigger: (text to inject, OID to use)."""
        rules: list[Rule] = []
        triggers: list[Trigger] = []
        for index in range(count):
            common = {
                "id": index + 1,
                "priority": self.rng.randint(1, max(count, 2)),
                "prod_handling": Handling.PAGE_AND_TICKET,
                "dev_handling": Handling.TICKET_ONLY,
                "team_assignment": "NetOps",
                "syslog_severity": (
                    Severity(self.rng.randint(0, 7)) if self.rng.random() < SEVERITY_SHARE else None
                ),
            }
            kind = index % 3
            if kind == 0:
                phrase = f"{self.word()} {self.word()}"
                rules.append(Rule(match_type="contains", match_string=phrase, **common))
                triggers.append(_phrase_trigger(phrase))
            elif kind == 1:
                pattern, make = self.regex()
                rules.append(Rule(match_type="regex", match_string=pattern, **common))
                triggers.append(_text_trigger(make))
            else:
                oid = f"1.3.6.1.4.1.{self.rng.randint(1, 60000)}.{self.rng.randint(1, 9)}"
                rules.append(Rule(match_type="oid_prefix", trap_oid=oid, **common))
                triggers.append(_oid_trigger(oid))
        return rules, triggers

    def events(self, count: int, triggers: Sequence[Trigger]) -> list[BenchEvent]:
        events = []
        for _ in range(count):
            words: list[str] = []
            size = 0
            while size < MESSAGE_BYTES:
                words.append(self.word())
                size += len(words[-1]) + 1
            arcs = ".".join(str(self.rng.randint(1, 20)) for _ in range(4))
            oid: str | None = f"1.3.6.1.4.1.{self.rng.randint(1, 60000)}.{arcs}"
            if self.rng.random() < TRIGGER_SHARE:
                text, trigger_oid = self.rng.choice(triggers)()
                if text:
                    words.insert(self.rng.randrange(len(words) + 1), text)
                oid = trigger_oid or oid
            severity = Severity(self.rng.randint(0, 7))
            events.append(BenchEvent(" ".join(words), severity, oid))
        return events


def _rate(
    match: Callable[[BenchEvent], Rule | None], events: Sequence[BenchEvent], seconds: float
) -> tuple[float, list[Rule | None]]:
    """Events/s over as many events as fit in ``seconds`` (at least one)."""
    answers: list[Rule | None] = []
    started = time.perf_counter()
    deadline = started + seconds
    for event in events:
        answers.append(match(event))
        if len(answers) % 16 == 0 and time.perf_counter() > deadline:
            break
    return len(answers) / (time.perf_counter() - started), answers


def _fmt(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the result table."""

    size: int
    load: float
    build: float
    indexed: float
    filter_only: float
    reference: float | None
    hits: float
    checked: int
    mismatches: int


def _measure(size: int, args: argparse.Namespace) -> Row:
    generator = Generator(args.seed + size)
    _log(f"[{size:,} rules] generating and validating rules ...")
    started = time.perf_counter()
    rules, triggers = generator.rules(size)
    load = time.perf_counter() - started
    events = generator.events(args.events, triggers)
    _log(f"[{size:,} rules] compiling the index ...")
    started = time.perf_counter()
    ruleset = RuleSet.compile(rules)
    build = time.perf_counter() - started
    if ruleset.rejected:
        _log(f"  {len(ruleset.rejected)} rules rejected, first: {ruleset.rejected[0]}")
    _log(f"  {ruleset.stats}")
    _log(f"[{size:,} rules] timing the indexed engine ...")
    indexed, answers = _rate(ruleset.match, events, args.seconds)
    hits = sum(1 for a in answers if a is not None) / len(answers)
    _log(f"[{size:,} rules] timing FilteredRE2 shards for every regex (no literal prefilter) ...")
    shards_only = RuleSet.compile(rules, prefilter_regexes=False)
    filter_only, other = _rate(shards_only.match, events, args.seconds)
    mismatches = sum(1 for a, o in zip(answers, other, strict=False) if a is not o)
    reference: float | None = None
    checked = len(other)
    if size <= args.reference_max:
        _log(f"[{size:,} rules] timing the reference loop (cap {args.seconds:g} s) ...")
        reference, expected = _rate(ReferenceMatcher(rules).match, events, args.seconds)
        checked = len(expected)
        mismatches += sum(1 for a, e in zip(answers, expected, strict=False) if a is not e)
    _log(f"[{size:,} rules] done: {indexed:,.0f} ev/s indexed")
    return Row(size, load, build, indexed, filter_only, reference, hits, checked, mismatches)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="100,1000,10000,100000")
    parser.add_argument("--events", type=int, default=MAX_EVENTS)
    parser.add_argument("--seconds", type=float, default=3.0, help="cap per timing")
    parser.add_argument("--reference-max", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=20261122)
    args = parser.parse_args(argv)
    rows = [_measure(int(s), args) for s in args.sizes.split(",") if s]

    print(
        f"{'rules':>8} {'load s':>7} {'build s':>8} {'indexed ev/s':>13} {'µs/ev':>7} "
        f"{'filter-only ev/s':>17} {'reference ev/s':>15} {'ratio':>8} {'hit rate':>8} "
        f"{'checked':>8} {'mismatch':>8}"
    )
    for row in rows:
        ratio = row.indexed / row.reference if row.reference else None
        print(
            f"{row.size:>8,} {row.load:>7.2f} {row.build:>8.3f} {row.indexed:>13,.0f} "
            f"{1e6 / row.indexed:>7.1f} {row.filter_only:>17,.0f} {_fmt(row.reference):>15} "
            f"{_fmt(ratio, 1) + ('x' if ratio else ''):>8} {row.hits:>8.1%} "
            f"{row.checked:>8,} {row.mismatches:>8}"
        )
    print(
        "ratio = indexed / reference loop; filter-only = FilteredRE2 shards for every regex;\n"
        "checked = events compared against the reference loop (or filter-only when it is skipped)"
    )
    return 1 if any(row.mismatches for row in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
