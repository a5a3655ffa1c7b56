"""Deterministic benchmark data: syslog and trap events, rule sets, request bodies.

Messages follow docs/reference/building-blocks.md §4: ~240 bytes drawn from a 4,000-word
vocabulary. Rules are split between 2-word ``contains`` phrases, RE2-safe
regex templates and OID prefixes (whole arcs), 10% of them with a severity
condition; ``hit_share`` of the events carry some rule's trigger (a phrase,
text a regex matches, or an OID under a prefix), so about that share match.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from shared.models import TYPE_SYSLOG, TYPE_TRAP, Event, Severity, event_id_for

VOCABULARY_SIZE = 4000
MESSAGE_BYTES = 240
SEVERITIES = ("emergency", "alert", "critical", "error", "warning", "notice", "info", "debug")


@dataclass(frozen=True)
class BenchEvent:
    """One inbound event: its CloudEvent type and JSON data (also a legacy item)."""

    ce_type: str
    data: dict[str, object]


Trigger = Callable[[], tuple[str, str | None]]  # -> (text to put in the message, OID)


def _text_trigger(make: Callable[[], str]) -> Trigger:
    return lambda: (make(), None)


def _phrase_trigger(phrase: str) -> Trigger:
    return lambda: (phrase, None)


def _oid_trigger(oid: str) -> Trigger:
    return lambda: ("", oid)


def regex_rule(rng: random.Random, word: Callable[[], str]) -> tuple[str, Callable[[], str]]:
    """One of six regex rule templates (docs/reference/building-blocks.md §4) and a function
    making text it matches; shared by every benchmark that generates rules."""
    a, b, c = word(), word(), word()
    n = rng.randint(0, 255)
    kind = rng.randrange(6)
    if kind == 0:
        return rf"\b{a}-\d+\b", lambda: f"{a}-{rng.randint(1, 999)}"
    if kind == 1:
        return rf"{a}\s+\w*{b}", lambda: f"{a}  x{b}"
    if kind == 2:
        return rf"(?:{a}|{b}) {c}", lambda: f"{b} {c}"
    if kind == 3:
        return (
            rf"user {a}\w* failed .* from 10\.{n}\.\d+\.\d+",
            lambda: f"user {a}1 failed login from 10.{n}.3.4",
        )
    if kind == 4:
        return rf"{a} \d+ {b}", lambda: f"{a} 42 {b}"
    return rf"{a}(?:ed|ing)? {b}", lambda: f"{a}ing {b}"


class Generator:
    """Events and rules from one seed (the same seed gives the same data)."""

    def __init__(self, seed: int = 20261122) -> None:
        self.rng = random.Random(seed)
        words: set[str] = set()
        while len(words) < VOCABULARY_SIZE:
            words.add("".join(self.rng.choices(string.ascii_lowercase, k=self.rng.randint(3, 9))))
        self.words = sorted(words)

    def word(self) -> str:
        return self.rng.choice(self.words)

    def message(self, extra: str = "") -> str:
        words: list[str] = []
        size = 0
        while size < MESSAGE_BYTES:
            words.append(self.word())
            size += len(words[-1]) + 1
        if extra:
            words.insert(self.rng.randrange(len(words) + 1), extra)
        return " ".join(words)

    def hostname(self) -> str:
        return (
            f"{self.rng.choice(('core-rtr', 'edge-sw', 'fw', 'lb'))}-{self.rng.randint(1, 400):03d}"
        )

    def random_oid(self) -> str:
        arcs = ".".join(str(self.rng.randint(1, 20)) for _ in range(4))
        return f"1.3.6.1.4.1.{self.rng.randint(1, 60000)}.{arcs}"

    def event(self, trigger: Trigger | None = None, trap_share: float = 0.2) -> BenchEvent:
        """A syslog event, or a trap (``trap_share``); with ``trigger``, one that matches."""
        text, oid = trigger() if trigger is not None else ("", None)
        if oid is None and self.rng.random() < trap_share:
            oid = self.random_oid()
        data: dict[str, object] = {
            "hostname": self.hostname(),
            "message": self.message(text),
            "syslog_severity": self.rng.choice(SEVERITIES),
            "source_type": "bench",
        }
        if oid is not None:
            data["trap_oid"] = oid
            return BenchEvent(TYPE_TRAP, data)
        return BenchEvent(TYPE_SYSLOG, data)

    def events(
        self, count: int, triggers: Sequence[Trigger] = (), hit_share: float = 0.0
    ) -> list[BenchEvent]:
        return [
            self.event(
                self.rng.choice(triggers) if triggers and self.rng.random() < hit_share else None
            )
            for _ in range(count)
        ]

    def _regex(self) -> tuple[str, Callable[[], str]]:
        return regex_rule(self.rng, self.word)

    def rules(self, count: int) -> tuple[list[dict[str, object]], list[Trigger]]:
        """``count`` rule entries (a rules-file document's ``rules``) and a trigger per rule."""
        rules: list[dict[str, object]] = []
        triggers: list[Trigger] = []
        teams = ("NetOps", "Firewall", "Datacenter", "Voice")
        for index in range(count):
            entry: dict[str, object] = {
                "priority": self.rng.randint(1, max(count, 2)),
                "prod_handling": self.rng.choice(("Page_and_ticket", "Ticket_only", "Page_only")),
                "dev_handling": "Ticket_only",
                "team_assignment": self.rng.choice(teams),
            }
            if self.rng.random() < 0.1:
                entry["syslog_severity"] = self.rng.choice(SEVERITIES)
            kind = index % 3
            if kind == 0:
                phrase = f"{self.word()} {self.word()}"
                entry.update(match_type="contains", match_string=phrase)
                triggers.append(_phrase_trigger(phrase))
            elif kind == 1:
                pattern, make = self._regex()
                entry.update(match_type="regex", match_string=pattern)
                triggers.append(_text_trigger(make))
            else:
                oid = f"1.3.6.1.4.1.{self.rng.randint(1, 60000)}.{self.rng.randint(1, 9)}"
                entry.update(match_type="oid_prefix", trap_oid=oid)
                triggers.append(_oid_trigger(f"{oid}.1.2"))
            rules.append(entry)
        return rules, triggers


# ---------------------------------------------------------- request bodies


def dumps(doc: object) -> str:
    return orjson.dumps(doc).decode()


def ce_pool_lines(events: Sequence[BenchEvent]) -> list[str]:
    """Lines of a ``ce`` pool: ``<ce-type>\\t<data JSON>``, one request each."""
    return [f"{e.ce_type}\t{dumps(e.data)}" for e in events]


def legacy_pool_lines(events: Sequence[BenchEvent], batch: int) -> list[str]:
    """Lines of a ``legacy`` pool: JSON arrays of ``batch`` objects."""
    return [
        dumps([e.data for e in events[i : i + batch]])
        for i in range(0, len(events) - batch + 1, batch)
    ]


def cebatch_pool_lines(events: Sequence[BenchEvent], batch: int) -> list[str]:
    """Lines of a ``cebatch`` pool: CloudEvents batches; ``@ID@`` becomes the request id."""
    lines = []
    for start in range(0, len(events) - batch + 1, batch):
        docs = [
            {
                "specversion": "1.0",
                "id": f"@ID@:{i}",
                "source": "/bench/wrk",
                "type": e.ce_type,
                "datacontenttype": "application/json",
                "data": e.data,
            }
            for i, e in enumerate(events[start : start + batch])
        ]
        lines.append(dumps(docs))
    return lines


def accepted_events(source: str, count: int, seed: int, **extra: object) -> list[Event]:
    """``count`` normalized events (what ingest publishes) from generated syslog data."""
    now = datetime.now(UTC)
    return [
        Event.model_validate(
            {
                "event_id": event_id_for(source, str(i)),
                "source": source,
                "id": str(i),
                "hostname": item.data["hostname"],
                "time": now,
                "message": item.data["message"],
                "severity": Severity.ERROR,
                "severity_name": "error",
                "trap_oid": item.data.get("trap_oid"),
                "received_at": now,
                **extra,
            }
        )
        for i, item in enumerate(Generator(seed).events(count))
    ]
