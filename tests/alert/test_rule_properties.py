"""Property tests: the indexed engine is the reference loop, only faster.

Messages come from a small vocabulary (with case changes, digits, and the
two non-ASCII letters RE2 folds onto ASCII) so that rules actually hit;
priorities come from a tiny range so ties are common.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import re2
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from functions.alert.rules import Rule, RuleSet, reference_match
from functions.alert.rules.literals import prefilter_text, required_literals
from functions.alert.rules.oid import has_prefix
from functions.alert.rules.regex import regex_options
from functions.alert.rules.semantics import PreparedEvent, evaluate, rule_matches
from shared.models import Handling, Severity
from tests.support.rules import Plain

WORDS = [
    "link", "down", "up", "error", "err", "failed", "fail", "port", "gi0/1",
    "%link-3-updown", "user", "admin", "10.0.0.1", "42", "abc", "kelvin",
    "u\u017fer", "\u212aelvin", "straße", "äbc", "a", "x-1",
]  # fmt: skip
ARCS = ["1", "3", "6", "9", "99"]

words = st.sampled_from(WORDS)
cased = st.builds(lambda w, how: [w, w.upper(), w.capitalize()][how], words, st.integers(0, 2))
messages = st.lists(st.one_of(cased, st.integers(0, 999).map(str)), max_size=8).map(" ".join)
oids = st.lists(st.sampled_from(ARCS), min_size=1, max_size=5).map(".".join)
severities = st.one_of(st.none(), st.sampled_from(list(Severity)))


TEMPLATES: list[Callable[[str, str], str]] = [
    lambda a, b: a,
    lambda a, b: rf"{a}\s+{b}",
    lambda a, b: rf"(?:{a}|{b})",
    lambda a, b: rf"{a}.*{b}",
    lambda a, b: rf"^{a}",
    lambda a, b: rf"{a}$",
    lambda a, b: r"\d+",
    lambda a, b: rf"{a}\d*",
    lambda a, b: rf"[a-z]+{a}",
    lambda a, b: rf"({a})+x?",
    lambda a, b: rf"\b{a}\b",
    lambda a, b: rf"(?:{a}|){b}",
    lambda a, b: rf"{a}[[:digit:]]",  # RE2-only syntax: goes to the FilteredRE2 shards
    lambda a, b: rf"(?-i:{a})",
    lambda a, b: rf"{a} \d+ {b}",
    lambda a, b: r"^\S+$",  # no literal at all: "unfiltered"
    lambda a, b: rf"{a}(?:ed|ing)? {b}",
    lambda a, b: rf"(?:{b} )?{a}",  # optional parts must not become requirements
    lambda a, b: rf"{a}(?:{b})*",
    lambda a, b: rf"(?:{b}){{0,2}}{a}",
    lambda a, b: rf"{a}(?:{b})+?",
    lambda a, b: rf"{a}|{b}",
]
# Templates covering literal, multi-literal, alternation and literal-free shapes.
regexes = st.builds(
    lambda make, a, b: make(re.escape(a), re.escape(b)), st.sampled_from(TEMPLATES), words, words
)
phrases = st.lists(cased, min_size=1, max_size=2).map(" ".join)
contains_strings = st.builds(
    lambda p, half: p[: max(1, len(p) // 2)] if half else p, phrases, st.booleans()
)
rule_oids = st.builds(lambda o, dot: "." + o if dot else o, oids, st.booleans())
maybe_oids = st.one_of(st.none(), st.none(), oids)
rule_severities = st.one_of(st.none(), st.none(), st.sampled_from(list(Severity)))
kinds = st.sampled_from(["contains", "regex", "oid_prefix"])


@st.composite
def rules(draw: Any, rule_id: int) -> Rule:
    kind = draw(kinds)
    fields: dict[str, Any] = {
        "id": rule_id,
        "match_type": kind,
        "priority": draw(st.integers(0, 4)),
        "syslog_severity": draw(rule_severities),
        "is_active": rule_id % 7 != 0 or draw(st.booleans()),
        "prod_handling": Handling.PAGE_AND_TICKET,
        "dev_handling": Handling.IGNORE,
        "team_assignment": "T",
    }
    if kind == "contains":
        fields["match_string"] = draw(contains_strings)
        fields["trap_oid"] = draw(maybe_oids)
    elif kind == "regex":
        fields["match_string"] = draw(regexes)
        fields["trap_oid"] = draw(maybe_oids)
    else:
        fields["trap_oid"] = draw(rule_oids)
        fields["match_string"] = draw(st.one_of(st.none(), cased))
    return Rule.model_validate(fields)


@st.composite
def rule_lists(draw: Any) -> list[Rule]:
    count = draw(st.integers(0, 25))
    ids = draw(st.permutations(range(1, count + 1)))
    return [draw(rules(i)) for i in ids]


events = st.builds(
    Plain,
    message=messages,
    severity=severities,
    trap_oid=st.one_of(st.none(), oids, oids),
)

SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(rule_lists(), st.lists(events, min_size=1, max_size=8), st.integers(1, 3))
def test_engine_equals_reference(rule_list: list[Rule], evs: list[Plain], shard: int) -> None:
    engines = [
        RuleSet.compile(rule_list, prefilter_regexes=True),
        RuleSet.compile(rule_list, prefilter_regexes=False, regex_shard_size=shard),
    ]
    for ev in evs:
        want = reference_match(rule_list, ev)
        for engine in engines:
            assert not engine.rejected
            got = engine.match(ev)
            assert (got.id if got else None) == (want.id if want else None)
        explanation = engines[0].explain(ev)
        assert explanation.consistent


@SETTINGS
@given(st.data(), events)
def test_explain_reasons_agree_with_matching(data: st.DataObject, ev: Plain) -> None:
    rule = data.draw(rules(1))
    prepared = PreparedEvent(ev)
    assert evaluate(rule, prepared).matched is rule_matches(rule, prepared)


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_required_literals_are_really_required(data: st.DataObject) -> None:
    """Soundness of the regex prefilter: a match always contains every requirement."""
    pattern = data.draw(regexes)
    requirements = required_literals(pattern)
    assume(requirements)
    try:
        python = re.compile(pattern, re.IGNORECASE)
    except re.error:
        assume(False)
    text = data.draw(st.from_regex(python))
    text = data.draw(st.sampled_from([text, text.upper(), text.swapcase()]))
    if re2.compile(pattern, regex_options()).search(text.encode()) is None:
        return
    seen = prefilter_text(text.lower())
    for need in requirements:
        assert any(literal in seen for literal in need), (pattern, text, need)


@given(st.lists(st.sampled_from(ARCS), min_size=1, max_size=6), oids)
def test_oid_prefix_is_on_whole_arcs(event_arcs: list[str], prefix: str) -> None:
    expected = event_arcs[: len(prefix.split("."))] == prefix.split(".")
    assert has_prefix(".".join(event_arcs), prefix) is expected
