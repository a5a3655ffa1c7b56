"""Rules read back from PostgreSQL exactly as stored, whatever their text."""

from __future__ import annotations

import pg8000.native
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.alert.store import (
    RULE_COLUMNS,
    load_rules,
    load_rules_document,
    parse_rules,
    rules_digest,
)

_text = st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=60)
_handling = st.sampled_from(["Page_and_ticket", "Page_only", "Ticket_only", "Ignore"])
_rule = st.fixed_dictionaries(
    {
        "match_type": st.sampled_from(["contains", "regex", "oid_prefix"]),
        "match_string": _text,
        "trap_oid": st.none() | st.from_regex(r"\A[0-9]+(\.[0-9]+){0,6}\Z"),
        "syslog_severity": st.none() | st.integers(0, 7),
        "priority": st.integers(-(2**31), 2**31 - 1),
        "prod_handling": _handling,
        "dev_handling": _handling,
        "team_assignment": _text.filter(bool),
        "is_active": st.booleans(),
    }
)


@settings(
    max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)
@given(st.lists(_rule, max_size=8))
def test_load_rules_returns_every_row_as_stored_in_rank_order(
    pg: pg8000.native.Connection, rules: list[dict[str, object]]
) -> None:
    pg.run("BEGIN")
    try:
        pg.run("DELETE FROM alert_rules")
        for rule in rules:
            pg.run(
                "INSERT INTO alert_rules (match_type, match_string, trap_oid, syslog_severity,"
                " priority, prod_handling, dev_handling, team_assignment, is_active)"
                " VALUES (:match_type, :match_string, :trap_oid, :syslog_severity, :priority,"
                " :prod_handling, :dev_handling, :team_assignment, :is_active)",
                **rule,
            )
        expected = [
            dict(zip(RULE_COLUMNS, row, strict=True))
            for row in pg.run(f"SELECT {', '.join(RULE_COLUMNS)} FROM alert_rules")
        ]
        expected.sort(key=lambda r: (r["priority"], r["id"]))
        assert load_rules(pg) == expected
    finally:
        pg.run("ROLLBACK")


def test_no_rules_is_an_empty_list(pg: pg8000.native.Connection) -> None:
    pg.run("BEGIN")
    try:
        pg.run("DELETE FROM alert_rules")
        assert load_rules(pg) == []
    finally:
        pg.run("ROLLBACK")


def _insert(pg: pg8000.native.Connection, rules: list[dict[str, object]]) -> None:
    pg.run("DELETE FROM alert_rules")
    for rule_id, rule in enumerate(rules, 1):
        pg.run(
            "INSERT INTO alert_rules (id, match_type, match_string, trap_oid, syslog_severity,"
            " priority, prod_handling, dev_handling, team_assignment, is_active)"
            " VALUES (:id, :match_type, :match_string, :trap_oid, :syslog_severity, :priority,"
            " :prod_handling, :dev_handling, :team_assignment, :is_active)",
            id=rule_id,
            **rule,
        )


def _digest_and_rows(
    pg: pg8000.native.Connection, rules: list[dict[str, object]]
) -> tuple[str, list[dict[str, object]]]:
    """The digest of ``rules`` once stored, checked against the document's, and the rows."""
    pg.run("BEGIN")
    try:
        _insert(pg, rules)
        digest, document = load_rules_document(pg)
        assert rules_digest(pg) == digest  # the same name, asked alone
        return digest, parse_rules(document)
    finally:
        pg.run("ROLLBACK")


@settings(
    max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)
@given(st.lists(_rule, max_size=5), st.lists(_rule, max_size=5), st.booleans())
def test_the_rules_digest_changes_exactly_when_the_rules_do(
    pg: pg8000.native.Connection,
    first: list[dict[str, object]],
    second: list[dict[str, object]],
    same: bool,
) -> None:
    """It names the compiled index of these rules (functions/alert/index_cache.py)."""
    digest_a, rows_a = _digest_and_rows(pg, first)
    digest_b, rows_b = _digest_and_rows(pg, first if same else second)
    assert (digest_a == digest_b) == (rows_a == rows_b)


def test_values_that_would_run_together_give_different_digests(
    pg: pg8000.native.Connection,
) -> None:
    base = {
        "match_type": "contains",
        "trap_oid": None,
        "syslog_severity": None,
        "priority": 1,
        "prod_handling": "Page_only",
        "dev_handling": "Page_only",
        "is_active": True,
        "team_assignment": "t",
    }
    variants = [
        [{**base, "match_string": "x", "team_assignment": "y,z"}],
        [{**base, "match_string": "x,y", "team_assignment": "z"}],
        [{**base, "match_string": "a\nb", "team_assignment": "t"}],
        [{**base, "match_string": "a", "team_assignment": "t"}],
        [{**base, "match_string": '"', "team_assignment": "t"}],
        [{**base, "match_string": "", "team_assignment": "t"}],
        [{**base, "match_type": "oid_prefix", "match_string": "", "trap_oid": "1.3"}],
        [{**base, "match_type": "oid_prefix", "match_string": None, "trap_oid": "1.3"}],
    ]
    digests = {_digest_and_rows(pg, rules)[0] for rules in variants}
    assert len(digests) == len(variants)
