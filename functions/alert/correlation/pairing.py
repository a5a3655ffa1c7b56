"""Down/up pairing: a clear message resolves the open alert of the same host and instance.

A paired rule's alerts get a dedup key per instance
(``mutt:<rule>:<host>:<instance>``, the instance being what the pair's
``instance`` finds: a named regex group, or the identifiers masking hides),
so the clear can name exactly the alert it closes, and vendors keep one
incident per interface instead of one per host. The open alert is kept in
Redis (``pairing.lua``); a clear that finds it produces a resolve alert that
copies the trigger's routing fields (team, handling, environment, severity),
so it reaches the same sinks as the trigger did.

Per event, finding clears costs one ``re2.Set`` scan over all clear patterns
(about a microsecond); instances are extracted only for paired rules' alerts
and for actual clears.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import re2

from functions.alert.correlation.config import CorrelationDoc, PairSpec, compile_instance
from functions.alert.correlation.dedup_keys import bounded
from functions.alert.rules.fingerprint import identifiers
from functions.alert.rules.regex import regex_options, regex_text
from shared.models import Alert, Event, alert_id_for


def default_key(rule_id: int, hostname: str) -> str:
    """The dedup key of an unpaired rule's alert (one per rule and host)."""
    return bounded(f"mutt:{rule_id}:{hostname}")


class _Instance:
    """How a message names its instance: a named group, masked identifiers, or not at all."""

    def __init__(self, spec: str) -> None:
        self.mode = spec if spec in ("masked", "none") else "regex"
        self._regex: Any = compile_instance(spec) if self.mode == "regex" else None
        self._group = self._regex.groupindex["instance"] if self._regex is not None else 0

    def of(self, message: str) -> str:
        if self.mode == "none":
            return ""
        if self.mode == "masked":
            return ",".join(identifiers(message))
        # bytes in, span out: the binding's str path and named-group lookup cost ~8x more
        data = regex_text(message)
        found = self._regex.search(data)
        if found is None:
            return ""
        start, end = found.span(self._group)
        if start < 0:
            return ""
        return data[start:end].decode("utf-8", "replace").strip().lower()


@dataclass(frozen=True)
class Pair:
    """A compiled pair: the rule, and how problem and clear name their instance."""

    spec: PairSpec
    problem: _Instance
    clear: _Instance

    @property
    def rule_id(self) -> int:
        return self.spec.rule

    def key(self, hostname: str, instance: str) -> str:
        """The alert key both sides agree on; host-wide when no instance was found."""
        if not instance:
            return default_key(self.spec.rule, hostname)
        return bounded(f"mutt:{self.spec.rule}:{hostname}:{instance}")


@dataclass(frozen=True)
class ClearMatch:
    """An event that clears the alert ``key``.

    ``rule_id`` is the pair's rule, or the rule that raised an X.733 alarm its
    "cleared" event ends (``Batch.alarm_clear``). ``None`` marks an
    Alertmanager resolution (``alertmanager.py``): it clears whatever rule
    raised the firing alert, and no rule matching it may turn it into a
    problem of its own.
    """

    key: str
    rule_id: int | None


class PairIndex:
    """Every pair of the applied correlation file, ready for the per-event checks."""

    def __init__(self, doc: CorrelationDoc) -> None:
        self.by_rule: dict[int, Pair] = {}
        patterns: list[str] = []
        for spec in doc.pairs:
            pair = Pair(
                spec, _Instance(spec.instance), _Instance(spec.clear_instance or spec.instance)
            )
            self.by_rule[spec.rule] = pair
            patterns.append(spec.clear)
        self._pairs = list(self.by_rule.values())
        self._set: Any = None
        if patterns:
            options = regex_options()
            clear_set = re2.Set.SearchSet(options)
            for pattern in patterns:
                clear_set.Add(pattern)
            clear_set.Compile()
            self._set = clear_set

    def __bool__(self) -> bool:
        return bool(self.by_rule)

    def problem_key(self, rule_id: int, event: Event) -> str | None:
        """The dedup key of a paired rule's alert, ``None`` for unpaired rules."""
        pair = self.by_rule.get(rule_id)
        if pair is None:
            return None
        return pair.key(event.hostname, pair.problem.of(event.message))

    def clears(self, event: Event) -> list[ClearMatch]:
        """The pairs whose clear pattern the event's message matches (usually none)."""
        if self._set is None or not event.message:
            return []
        hits = self._set.Match(regex_text(event.message))
        if not hits:
            return []
        found = []
        for index in sorted(hits):
            pair = self._pairs[index]
            key = pair.key(event.hostname, pair.clear.of(event.message))
            found.append(ClearMatch(key, pair.rule_id))
        return found


def resolve_alert(opened: Alert, clear: Event, now: datetime) -> Alert:
    """The resolve of ``opened``, caused by ``clear``: the trigger's routing, the clear's event.

    The id is deterministic (clear event + key), so a redelivered clear resolves once.
    """
    summary = f"{clear.hostname}: resolved: {clear.message[:500]}"
    return opened.model_copy(
        update={
            "alert_id": alert_id_for(clear.event_id, f"resolve:{opened.dedup_key}"),
            "event_id": clear.event_id,
            "event": clear,
            "summary": summary,
            "raised_at": now,
            "action": "resolve",
        }
    )
