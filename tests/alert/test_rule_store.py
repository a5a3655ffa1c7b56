"""Rules read back from PostgreSQL exactly as stored, whatever their text."""

from __future__ import annotations

import pg8000.native
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.alert.store import RULE_COLUMNS, load_rules

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
