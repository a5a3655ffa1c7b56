"""What an index hands back: a rule's rank plus the conditions it did not index.

An index only answers its own question (substring? regex? OID arc?). The
rest of a rule (severity, the extra OID condition of contains/regex rules,
"only when the event has no OID" for the message side of oid_prefix rules)
travels with the candidate and is checked by ``accepts``.
"""

from __future__ import annotations

from typing import NamedTuple

from shared.models import Severity

from .model import MatchType, Rule
from .semantics import PreparedEvent


class Candidate(NamedTuple):
    """A rule as seen by an index: its rank and its unindexed conditions."""

    rank: int
    severity: Severity | None
    oid: str | None
    no_oid_only: bool


def message_candidate(rank: int, rule: Rule) -> Candidate:
    """The message side of a rule (contains, regex, or oid_prefix fallback)."""
    if rule.match_type is MatchType.OID_PREFIX:
        return Candidate(rank, rule.syslog_severity, None, True)
    return Candidate(rank, rule.syslog_severity, rule.trap_oid, False)


def oid_candidate(rank: int, rule: Rule) -> Candidate:
    """The OID side of an oid_prefix rule: only severity is left to check."""
    return Candidate(rank, rule.syslog_severity, None, False)


def accepts(candidate: Candidate, event: PreparedEvent) -> bool:
    """True when the conditions no index covered hold for ``event``."""
    _, severity, oid, no_oid_only = candidate
    if severity is not None and event.severity != severity:
        return False
    if no_oid_only:
        return event.oid is None
    return oid is None or event.oid is None or oid in event.oid_prefixes
