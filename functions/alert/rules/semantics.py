"""What "rule R matches event E" means: the single definition both matchers obey.

``rule_matches`` is the fast boolean the reference loop uses; ``evaluate``
says the same thing in words for ``explain``. A property test keeps the two
in step, and another keeps the indexed engine in step with the loop.

Per rule type (all also need ``is_active`` and the optional severity):

* contains: lower-cased ``match_string`` is a substring of the lower-cased
  message; if the rule has a ``trap_oid`` and the event has an OID, the event
  OID must also be under it (events without an OID: message only).
* regex: RE2 case-insensitive search in the message; same OID condition.
* oid_prefix: event with an OID: the event OID is under ``trap_oid`` (whole
  arcs). Event without an OID: contains-test of ``match_string`` if the rule
  has one, otherwise no match.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from shared.models import Severity

from .model import MatchType, Rule
from .oid import event_oid, has_prefix, prefixes
from .regex import regex_text


class EventLike(Protocol):
    """The three event fields matching reads (``shared.models.Event`` fits)."""

    @property
    def message(self) -> str: ...
    @property
    def severity(self) -> Severity | None: ...
    @property
    def trap_oid(self) -> str | None: ...


class PreparedEvent:
    """An event's matching views, each computed at most once per event."""

    __slots__ = ("_data", "_lower", "_prefixes", "message", "oid", "severity")

    def __init__(self, event: EventLike) -> None:
        self.message = event.message or ""
        self.severity = event.severity
        self.oid = event_oid(event.trap_oid)
        self._lower: str | None = None
        self._data: bytes | None = None
        self._prefixes: frozenset[str] | None = None

    @property
    def lower(self) -> str:
        """Lower-cased message for substring tests."""
        if self._lower is None:
            self._lower = self.message.lower()
        return self._lower

    @property
    def data(self) -> bytes:
        """UTF-8 message for RE2."""
        if self._data is None:
            self._data = regex_text(self.message)
        return self._data

    @property
    def oid_prefixes(self) -> frozenset[str]:
        """Whole-arc prefixes of the event OID (empty when it has none)."""
        if self._prefixes is None:
            self._prefixes = prefixes(self.oid) if self.oid is not None else frozenset()
        return self._prefixes


def rule_matches(rule: Rule, event: PreparedEvent) -> bool:
    """True when ``rule`` matches ``event`` (priority is not considered here)."""
    if not rule.is_active:
        return False
    if rule.syslog_severity is not None and event.severity != rule.syslog_severity:
        return False
    if rule.match_type is MatchType.OID_PREFIX:
        if event.oid is not None:
            return has_prefix(event.oid, rule.trap_oid or "")
        return rule.needle is not None and rule.needle in event.lower
    if (
        rule.trap_oid is not None
        and event.oid is not None
        and not has_prefix(event.oid, rule.trap_oid)
    ):
        return False
    if rule.match_type is MatchType.CONTAINS:
        return rule.needle is not None and rule.needle in event.lower
    return rule.regex is not None and rule.regex.search(event.data) is not None


@dataclass(frozen=True, slots=True)
class Verdict:
    """One rule's outcome for one event, with the reason in words."""

    rule: Rule
    matched: bool
    reason: str


def _severity_name(value: Severity | int | None) -> str:
    if value is None:
        return "none"
    try:
        return Severity(value).label
    except ValueError:
        return str(value)


def evaluate(rule: Rule, event: PreparedEvent) -> Verdict:
    """Same decision as ``rule_matches``, explained (for ``mutt rules test``)."""

    def verdict(matched: bool, reason: str) -> Verdict:
        return Verdict(rule, matched, reason)

    if not rule.is_active:
        return verdict(False, "rule is inactive")
    wanted = rule.syslog_severity
    if wanted is not None and event.severity != wanted:
        got = _severity_name(event.severity)
        return verdict(False, f"needs severity {wanted.label}, event has {got}")
    text = repr(rule.match_string)
    if rule.match_type is MatchType.OID_PREFIX:
        if event.oid is not None:
            under = has_prefix(event.oid, rule.trap_oid or "")
            relation = "is under" if under else "is not under"
            return verdict(under, f"event OID {event.oid} {relation} {rule.trap_oid}")
        if rule.needle is None:
            return verdict(False, "event has no trap OID and the rule has no match_string")
        found = rule.needle in event.lower
        relation = "contains" if found else "does not contain"
        return verdict(found, f"event has no trap OID; message {relation} {text}")
    oid_note = ""
    if rule.trap_oid is not None and event.oid is not None:
        if not has_prefix(event.oid, rule.trap_oid):
            return verdict(False, f"event OID {event.oid} is not under {rule.trap_oid}")
        oid_note = f"event OID {event.oid} is under {rule.trap_oid} and "
    if rule.match_type is MatchType.CONTAINS:
        found = rule.needle is not None and rule.needle in event.lower
        relation = "contains" if found else "does not contain"
        return verdict(found, f"{oid_note}message {relation} {text}")
    found = rule.regex is not None and rule.regex.search(event.data) is not None
    relation = "matches" if found else "does not match"
    return verdict(found, f"{oid_note}regex {text} {relation} the message")
