"""Rule validation: every bad rule is refused at load with the rule and field named."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from functions.alert.rules import MatchType, Rule, RuleError, RuleSet, validate_rule
from shared.models import Handling, Severity
from tests.support.rules import row


def _error(**fields: Any) -> RuleError:
    with pytest.raises(RuleError) as caught:
        validate_rule(row(7, **fields))
    return caught.value


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"match_type": "glob"}, "match_type", "unknown match_type 'glob'"),
        ({"match_string": None}, "match_string", "needs a non-blank match_string"),
        ({"match_string": ""}, "match_string", "needs a non-blank match_string"),
        ({"match_string": "   "}, "match_string", "needs a non-blank match_string"),
        (
            {"match_type": "regex", "match_string": "(link"},
            "match_string",
            "regex does not compile under RE2: missing )",
        ),
        (
            {"match_type": "regex", "match_string": "(?=x)y"},
            "match_string",
            "RE2 has no look-around",
        ),
        (
            {"match_type": "regex", "match_string": r"(a)\1"},
            "match_string",
            "RE2 has no back-references",
        ),
        ({"match_type": "oid_prefix", "match_string": None}, "trap_oid", "needs a trap_oid"),
        (
            {"match_type": "oid_prefix", "trap_oid": "1.3.6.*"},
            "trap_oid",
            "must be a numeric dotted OID",
        ),
        ({"trap_oid": "iso.3.6"}, "trap_oid", "must be a numeric dotted OID"),
        ({"syslog_severity": 9}, "syslog_severity", "out of range 0-7"),
        ({"syslog_severity": "loud"}, "syslog_severity", "unknown severity 'loud'"),
        ({"prod_handling": "Email_only"}, "prod_handling", "unknown handling 'Email_only'"),
        ({"dev_handling": "Page_and_tikcet"}, "dev_handling", "unknown handling"),
        ({"team_assignment": "  "}, "team_assignment", "must not be blank"),
        ({"team_assignment": "x" * 200}, "team_assignment", "longer than 128"),
        ({"priority": "high"}, "priority", "valid integer"),
        ({"priority": True}, "priority", "valid integer"),
        ({"team_assignment": None}, "team_assignment", "valid string"),
    ],
)
def test_invalid_rules_name_rule_field_and_reason(
    fields: dict[str, Any], field: str, reason: str
) -> None:
    error = _error(**fields)
    assert error.rule == "7"
    assert error.field == field
    assert reason in error.reason
    assert str(error).startswith(f"rule 7: {field}: ")
    assert isinstance(error, ValueError)


def test_missing_fields_are_reported_together() -> None:
    raw = row(3)
    del raw["team_assignment"], raw["prod_handling"]
    with pytest.raises(RuleError) as caught:
        validate_rule(raw)
    assert dict(caught.value.problems) == {
        "prod_handling": "is required",
        "team_assignment": "is required",
    }


def test_rule_without_id_is_named_by_where() -> None:
    raw = row(1, match_type="regex", match_string="(")
    del raw["id"]
    with pytest.raises(RuleError) as caught:
        validate_rule(raw, where="rules.yaml #4")
    assert caught.value.rule == "rules.yaml #4"


def test_unknown_columns_ignored_for_rows_refused_for_yaml() -> None:
    raw = row(1, created_at="2026-01-01", match_strng="typo")
    assert validate_rule(raw).id == 1
    with pytest.raises(RuleError) as caught:
        validate_rule(raw, ignore_unknown=False)
    assert {field for field, _ in caught.value.problems} == {"created_at", "match_strng"}


def test_normalisation() -> None:
    rule = validate_rule(
        row(
            1,
            match_type=" OID_PREFIX ",
            match_string="",
            trap_oid=" .1.3.6.1.4.1.9 ",
            syslog_severity="Err",
            prod_handling="page_and_ticket",
            dev_handling="IGNORE",
            team_assignment="  NetOps ",
        )
    )
    assert rule.match_type is MatchType.OID_PREFIX
    assert rule.match_string is None  # optional on oid_prefix; "" means none
    assert rule.trap_oid == "1.3.6.1.4.1.9"
    assert rule.syslog_severity is Severity.ERROR
    assert rule.prod_handling is Handling.PAGE_AND_TICKET
    assert rule.dev_handling is Handling.IGNORE
    assert rule.team_assignment == "NetOps"
    assert rule.is_active is True


@pytest.mark.parametrize("value", [3, "3", "err", "ERROR", " error ", Severity.ERROR])
def test_severity_accepts_numbers_and_names(value: object) -> None:
    assert validate_rule(row(1, syslog_severity=value)).syslog_severity is Severity.ERROR


def test_direct_construction_validates_and_is_frozen() -> None:
    with pytest.raises(ValidationError, match="regex does not compile"):
        Rule.model_validate(row(1, match_type="regex", match_string="a{2,1}"))
    rule = Rule.model_validate(row(1))
    with pytest.raises(ValidationError):
        rule.priority = 1  # type: ignore[misc]


def test_from_rows_keeps_good_rules_and_lists_bad_ones() -> None:
    rows = [
        row(1),
        row(2, match_type="regex", match_string="(bad"),
        row(3, match_string="x", syslog_severity="loud"),
        row(1, match_string="duplicate id"),
    ]
    ruleset = RuleSet.from_rows(rows)
    assert [r.id for r in ruleset.rules] == [1]
    assert [(e.rule, e.field) for e in ruleset.rejected] == [
        ("2", "match_string"),
        ("3", "syslog_severity"),
        ("1", "id"),
    ]
    assert ruleset.stats.rejected == 3
