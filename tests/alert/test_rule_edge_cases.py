"""MUTT v2.5 rule edge cases (docs/reference/mutt-v25.md §3), table-driven, through both matchers.

Every case runs through the indexed ``RuleSet`` *and* the reference loop;
they must agree with each other and with the expected rule id.

How each item of docs/reference/mutt-v25.md §3 is handled:

1. No match -> unhandled (kept): ``None``.
2. Several matches -> lowest priority wins (kept); ties were DB-order
   (non-deterministic) -> FIXED: ties go to the lowest rule id.
3. Rule type is not a tie-breaker (kept): only (priority, id) orders rules.
4. A contains/regex rule with a trap_oid was dead for trap events -> FIXED:
   its trap_oid is an extra condition (the event OID must be under it);
   events without an OID are still judged on the message alone, as in v2.5.
   Also new: an oid_prefix rule's match_string is used for events with no OID.
5. oid_prefix had no dot boundary and no leading-dot normalisation -> FIXED:
   whole arcs, leading dots ignored on both sides; wildcards are refused
   at validation (test_rule_validation.py) instead of never matching.
6. Severity was a strict untyped ``!=`` on the message branch only -> FIXED:
   typed (3 == "3" == "err"), and applied to every rule type. An event
   without severity still never matches a rule that sets one (kept).
7. An invalid regex was silently dropped -> FIXED: refused at load with the
   rule, field and RE2's reason (test_rule_validation.py); empty
   match_string likewise refused instead of silently skipped.
8. Dev hosts were exact and case-sensitive -> FIXED (test_dev_hosts.py).
9. Unknown handling values silently meant "not forwarded" -> FIXED: refused
   at validation; Ignore is an explicit Handling (tested here via decide).
10. Unhandled counting per exact text -> FIXED by the ``masked`` fingerprint
   (test_fingerprint.py); window and threshold live in the Redis counter.
11, 12. Delivery duplicates and timestamp trust are not matching concerns
   (idempotency keys and the DEFAULT partition are tested elsewhere).
"""

from __future__ import annotations

from typing import Any

import pytest

from functions.alert.rules import DevHosts, RuleSet, reference_match
from shared.models import Event, Handling, Severity
from tests.support.rules import event, rule

OID = "1.3.6.1.4.1.9.9.41.2"

CASES: list[tuple[str, list[dict[str, Any]], Event, int | None]] = [
    # 1. no match
    ("1 no rule matches", [{"match_string": "link down"}], event("all good"), None),
    ("1 empty message", [{"match_string": "x"}], event(""), None),
    # 2. multiple matches: priority, then id
    (
        "2 lowest priority wins",
        [{"id": 1, "priority": 20}, {"id": 2, "priority": 5}],
        event("LINK DOWN on gi0/1"),
        2,
    ),
    (
        "2 tie goes to the lowest id whatever the input order",
        [{"id": 9, "priority": 5}, {"id": 4, "priority": 5}, {"id": 6, "priority": 5}],
        event("link down"),
        4,
    ),
    (
        "2 inactive rules never match",
        [{"id": 1, "priority": 1, "is_active": False}, {"id": 2, "priority": 9}],
        event("link down"),
        2,
    ),
    # 3. type is not a tie-breaker
    (
        "3 contains beats a later oid_prefix on a trap with a message",
        [
            {"id": 1, "priority": 5, "match_string": "cpu"},
            {"id": 2, "priority": 10, "match_type": "oid_prefix", "trap_oid": "1.3.6"},
        ],
        event("cpu high", trap_oid=OID),
        1,
    ),
    (
        "3 oid_prefix beats a later contains",
        [
            {"id": 1, "priority": 10, "match_string": "cpu"},
            {"id": 2, "priority": 5, "match_type": "oid_prefix", "trap_oid": "1.3.6"},
        ],
        event("cpu high", trap_oid=OID),
        2,
    ),
    # 4. contains/regex rule with a trap_oid (dead for traps in v2.5)
    (
        "4 contains+oid matches a trap under the OID",
        [{"match_string": "config", "trap_oid": "1.3.6.1.4.1.9"}],
        event("CONFIG changed", trap_oid=OID),
        1,
    ),
    (
        "4 contains+oid: trap under another OID does not match",
        [{"match_string": "config", "trap_oid": "1.3.6.1.4.1.11"}],
        event("config changed", trap_oid=OID),
        None,
    ),
    (
        "4 contains+oid: event without OID is judged on the message (as v2.5)",
        [{"match_string": "config", "trap_oid": "1.3.6.1.4.1.9"}],
        event("config changed"),
        1,
    ),
    (
        "4 regex+oid matches a trap under the OID",
        [{"match_type": "regex", "match_string": r"changed by \w+", "trap_oid": ".1.3.6.1"}],
        event("config CHANGED BY admin", trap_oid=OID),
        1,
    ),
    (
        "4 oid_prefix+match_string: no-OID event uses the message",
        [{"match_type": "oid_prefix", "trap_oid": "1.3.6.1.4.1.9", "match_string": "BGP"}],
        event("bgp neighbor down"),
        1,
    ),
    (
        "4 oid_prefix+match_string: a trap is judged on its OID only",
        [{"match_type": "oid_prefix", "trap_oid": "1.3.6.1.4.1.11", "match_string": "bgp"}],
        event("bgp neighbor down", trap_oid=OID),
        None,
    ),
    (
        "4 oid_prefix without match_string never matches a no-OID event",
        [{"match_type": "oid_prefix", "trap_oid": "1.3.6", "match_string": None}],
        event("1.3.6.1 in text"),
        None,
    ),
    # 5. OID boundaries and leading dots
    (
        "5 prefix on an arc boundary",
        [{"match_type": "oid_prefix", "trap_oid": "1.3.6.1.4.1.9"}],
        event("", trap_oid="1.3.6.1.4.1.9.9.41"),
        1,
    ),
    (
        "5 equal OID matches",
        [{"match_type": "oid_prefix", "trap_oid": "1.3.6.1.4.1.9"}],
        event("", trap_oid="1.3.6.1.4.1.9"),
        1,
    ),
    (
        "5 no match inside an arc (9 is not 99)",
        [{"match_type": "oid_prefix", "trap_oid": "1.3.6.1.4.1.9"}],
        event("", trap_oid="1.3.6.1.4.1.99.1"),
        None,
    ),
    (
        "5 leading dot on the rule is ignored",
        [{"match_type": "oid_prefix", "trap_oid": ".1.3.6.1.4.1.9.9.41.2"}],
        event("", trap_oid="1.3.6.1.4.1.9.9.41.2.1"),
        1,
    ),
    (
        "5 longer rule OID does not match a shorter event OID",
        [{"match_type": "oid_prefix", "trap_oid": "1.3.6.1.4.1.9.9"}],
        event("", trap_oid="1.3.6.1.4.1.9"),
        None,
    ),
    # 6. severity
    (
        "6 rule severity as text matches the typed event severity",
        [{"syslog_severity": "3"}],
        event("link down", severity=3),
        1,
    ),
    (
        "6 rule severity name matches",
        [{"syslog_severity": "err"}],
        event("link down", severity=Severity.ERROR),
        1,
    ),
    (
        "6 other severity does not match",
        [{"syslog_severity": "err"}],
        event("link down", severity=Severity.WARNING),
        None,
    ),
    (
        "6 event without severity never matches a severity rule (kept)",
        [{"syslog_severity": 3}],
        event("link down"),
        None,
    ),
    (
        "6 severity applies to oid_prefix rules too",
        [{"match_type": "oid_prefix", "trap_oid": "1.3.6", "syslog_severity": "crit"}],
        event("", trap_oid=OID, severity=Severity.WARNING),
        None,
    ),
    (
        "6 severity falls through to the next rule",
        [{"id": 1, "priority": 1, "syslog_severity": 0}, {"id": 2, "priority": 2}],
        event("link down", severity=4),
        2,
    ),
    # contains / regex basics
    (
        "contains is case-insensitive",
        [{"match_string": "%LINK-3-UPDOWN"}],
        event("x %link-3-updown y"),
        1,
    ),
    (
        "regex is a case-insensitive search",
        [{"match_type": "regex", "match_string": r"^%LINK-\d-UPDOWN: .*down$"}],
        event("%link-3-updown: Interface Gi0/1 DOWN"),
        1,
    ),
    (
        "regex: RE2 case folding maps LONG S onto s (prefilter must too)",
        [{"match_type": "regex", "match_string": "failed user"}],
        event("FAILED U\u017fER root"),
        1,
    ),
    (
        "regex: RE2 case folding maps KELVIN SIGN onto k",
        [{"match_type": "regex", "match_string": r"temp \d+ kelvin"}],
        event("temp 300 \u212aELVIN"),
        1,
    ),
    (
        "contains follows str.lower: LONG S is not s",
        [{"match_string": "failed user"}],
        event("failed u\u017fer"),
        None,
    ),
    (
        "regex without literal (FilteredRE2 path) still matches",
        [{"match_type": "regex", "match_string": r"^\S+$"}],
        event("single-token"),
        1,
    ),
    (
        "regex with RE2-only syntax (POSIX class) matches",
        [{"match_type": "regex", "match_string": r"port [[:digit:]]+ down"}],
        event("Port 12 down"),
        1,
    ),
]


@pytest.mark.parametrize(("name", "specs", "ev", "expected"), CASES, ids=[c[0] for c in CASES])
def test_edge_case(name: str, specs: list[dict[str, Any]], ev: Event, expected: int | None) -> None:
    rules = [rule(spec.pop("id", 1), **spec) for spec in (dict(s) for s in specs)]
    for prefilter in (True, False):
        ruleset = RuleSet.compile(rules, prefilter_regexes=prefilter)
        assert not ruleset.rejected
        got = ruleset.match(ev)
        want = reference_match(rules, ev)
        assert (got.id if got else None) == expected, name
        assert (want.id if want else None) == expected, name
        explanation = ruleset.explain(ev)
        assert explanation.consistent, explanation.render()


def test_9_ignore_is_explicit_and_chosen_per_environment() -> None:
    r = rule(1, prod_handling="Ignore", dev_handling="ticket_only")
    dev = DevHosts(["lab1"])
    assert dev.decide(r, "core1.dc.example.com") == ("prod", Handling.IGNORE)
    assert dev.decide(r, "LAB1.dc.example.com") == ("dev", Handling.TICKET_ONLY)
    assert not Handling.IGNORE.forwards


def test_explain_lists_better_rules_and_why() -> None:
    rules = [
        rule(1, priority=1, is_active=False),
        rule(2, priority=2, syslog_severity="crit"),
        rule(3, priority=3, match_type="oid_prefix", trap_oid="1.3.6.1.4.1.99"),
        rule(4, priority=4, match_string="down"),
        rule(5, priority=5, match_string="link"),
    ]
    ev = event("link down", severity=4, trap_oid=OID)
    explanation = RuleSet.compile(rules).explain(ev)
    assert explanation.rule is not None and explanation.rule.id == 4
    reasons = [(v.rule.id, v.matched, v.reason) for v in explanation.verdicts]
    assert reasons == [
        (1, False, "rule is inactive"),
        (2, False, "needs severity critical, event has warning"),
        (3, False, f"event OID {OID} is not under 1.3.6.1.4.1.99"),
        (4, True, "message contains 'down'"),
    ]
    text = explanation.render()
    assert "MATCH rule 4" in text and "=> rule 4, team NetOps" in text
    limited = RuleSet.compile(rules).explain(ev, limit=1)
    assert [v.rule.id for v in limited.verdicts] == [1, 4]
    assert limited.truncated == 2
    nothing = RuleSet.compile(rules).explain(event("quiet"))
    assert nothing.rule is None and "unhandled" in nothing.render()
