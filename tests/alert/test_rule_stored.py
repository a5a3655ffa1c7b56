"""A stored compiled rule set (``rules/stored.py``) is the rule set it was dumped from.

Same answers for every event, same rules (field for field, as pydantic sees
them), same rejections; data not shaped like a dump is refused with
``ValueError``, never half-loaded.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.rules_bench import Generator
from functions.alert.rules import Rule, RuleSet, reference_match
from functions.alert.rules.engine import analyse_each
from functions.alert.rules.stored import Recorder, dump, load
from tests.alert.test_rule_properties import SETTINGS, events, rule_lists
from tests.support.rules import Plain, row


def _roundtrip(ruleset: RuleSet, recorder: Recorder) -> RuleSet:
    return load(dump(ruleset, recorder.answers))


def _compiled(rules: list[Rule], **options: Any) -> tuple[RuleSet, Recorder]:
    recorder = Recorder(analyse_each)
    return RuleSet.compile(rules, analyse=recorder, **options), recorder


def _state(rule: Rule) -> dict[str, Any]:
    """What pydantic keeps of a rule (pickling state), without cached properties."""
    state = dict(rule.__getstate__())
    state["__dict__"] = {k: v for k, v in state["__dict__"].items() if k in Rule.model_fields}
    return state


@SETTINGS
@given(rule_lists(), st.lists(events, min_size=1, max_size=8), st.integers(1, 3))
def test_a_stored_rule_set_answers_as_the_one_it_was_dumped_from(
    rule_list: list[Rule], evs: list[Plain], shard: int
) -> None:
    for options in ({"prefilter_regexes": True}, {"regex_shard_size": shard}):
        original, recorder = _compiled(rule_list, **options)
        restored = _roundtrip(original, recorder)
        assert restored.rules == original.rules
        assert [_state(r) for r in restored.rules] == [_state(r) for r in original.rules]
        assert [str(e) for e in restored.rejected] == [str(e) for e in original.rejected]
        assert replace(restored.stats, build_seconds=0) == replace(original.stats, build_seconds=0)
        for ev in evs:
            want = reference_match(rule_list, ev)
            got = restored.match(ev)
            assert (got.id if got else None) == (want.id if want else None)


def test_bench_rules_answer_the_same_after_a_roundtrip() -> None:
    """3,000 generated rules (literal prefilter in use), 300 events, every answer identical."""
    generator = Generator(seed=11)
    rules, triggers = generator.rules(3000)
    original, recorder = _compiled(rules)
    assert original.stats.regex_literals > 0  # the analyses went through the dump
    restored = _roundtrip(original, recorder)
    answers = [(original.match(e), restored.match(e)) for e in generator.events(300, triggers)]
    assert all((a.id if a else None) == (b.id if b else None) for a, b in answers)
    assert sum(1 for a, _ in answers if a is not None) > 10


def test_rejections_are_kept_in_order_with_their_reasons() -> None:
    rows = [
        row(1, match_type="regex", match_string="(?<=x)y"),  # RE2 has no look-behind
        row(2),
        row(2, match_string="again"),  # duplicate id
        row(3, prod_handling="Maybe"),
    ]
    recorder = Recorder(analyse_each)
    original = RuleSet.from_rows(rows, analyse=recorder)
    assert len(original.rejected) == 3
    restored = _roundtrip(original, recorder)
    assert [(e.rule, e.problems) for e in restored.rejected] == [
        (e.rule, e.problems) for e in original.rejected
    ]
    assert [r.id for r in restored.rules] == [2]


def test_no_regex_is_compiled_until_an_event_needs_it() -> None:
    generator = Generator(seed=3)
    rules, triggers = generator.rules(1800)
    original, recorder = _compiled(rules, prefilter_regexes=True)
    restored = _roundtrip(original, recorder)
    regexes = {r.id: r for r in restored.rules if r.match_type == "regex"}
    assert len(regexes) == 600
    assert not any("regex" in vars(r) for r in regexes.values())  # nothing compiled yet
    index = next(i for i, r in enumerate(rules) if r.id in regexes and r.syslog_severity is None)
    text, _ = triggers[index]()
    got = restored.match(Plain(text, None, None))
    want = original.match(Plain(text, None, None))
    assert got is not None and want is not None and got.id == want.id
    compiled = [r for r in regexes.values() if "regex" in vars(r)]
    assert 1 <= len(compiled) < 20  # the survivors of one event, not the 600


def _doc(ruleset: RuleSet, recorder: Recorder) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(dump(ruleset, recorder.answers))
    return doc


@pytest.mark.parametrize(
    "spoil",
    [
        lambda d: d.update(format=99),
        lambda d: d.pop("rules"),
        lambda d: d.update(options=["2000", None]),
        lambda d: d["rules"][0].__setitem__(0, "1"),  # id as text
        lambda d: d["rules"][0].__setitem__(1, "sometimes"),  # no such match type
        lambda d: d["rules"][0].__setitem__(6, "Maybe"),  # no such handling
        lambda d: d["rules"][0].pop(),  # a field short
        lambda d: d["rules"].append(list(d["rules"][0])),  # duplicate id: rebuilds differently
        lambda d: d["rejected"].append(["9", []]),
        lambda d: d["analyses"].clear(),  # the prefilter needs them
        lambda d: d["analyses"].update({k: [["UPPER"]] for k in d["analyses"]}),
    ],
)
def test_data_not_shaped_like_a_dump_is_refused(spoil: Any) -> None:
    generator = Generator(seed=5)
    rules, _ = generator.rules(1800)  # 600 regexes: the prefilter and its analyses are used
    original, recorder = _compiled(rules)
    doc = _doc(original, recorder)
    spoil(doc)
    with pytest.raises(ValueError, match=r"stored|not"):
        load(orjson.dumps(doc))


@pytest.mark.parametrize("data", [b"", b"{", b"[]", b"null", b'{"format": 1}', b"\xff\xfe"])
def test_garbage_is_refused(data: bytes) -> None:
    with pytest.raises(ValueError):
        load(data)
