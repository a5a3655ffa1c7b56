"""The audit writer against real PostgreSQL: batched, exact, idempotent."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pg8000.native
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.audit.writer import AuditRow, write_rows


def row(i: int, message: str = "m", when: datetime | None = None) -> AuditRow:
    now = datetime.now(UTC)
    return AuditRow(
        event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"e{i}"),
        event_time=when or now,
        received_at=now,
        hostname=f"host{i}",
        matched_rule_id=i,
        handling_decision="Page_only",
        environment="prod",
        team="NETO",
        severity=3,
        forwarded=True,
        alert_id=uuid.uuid4(),
        event={"message": message, "n": i},
    )


def count(pg: pg8000.native.Connection, ids: list[uuid.UUID]) -> int:
    return int(
        pg.run(
            "SELECT count(*) FROM event_audit_log WHERE event_id = ANY(CAST(:ids AS uuid[]))",
            ids=[str(i) for i in ids],
        )[0][0]
    )


def test_batch_is_written_once_even_when_redelivered(pg: pg8000.native.Connection) -> None:
    rows = [row(i) for i in range(500)]
    assert write_rows(pg, rows) == 500
    assert write_rows(pg, [*rows[:250], row(1000)]) == 1  # redelivery adds nothing
    assert count(pg, [r.event_id for r in rows]) == 500


def test_duplicates_inside_one_batch_write_one_row(pg: pg8000.native.Connection) -> None:
    r = row(2000)
    assert write_rows(pg, [r, r, r]) == 1


def test_old_events_land_in_the_default_partition(pg: pg8000.native.Connection) -> None:
    old = row(3000, when=datetime(2001, 1, 1, tzinfo=UTC))
    write_rows(pg, [old])
    (part,) = pg.run(
        "SELECT tableoid::regclass::text FROM event_audit_log WHERE event_id = CAST(:i AS uuid)",
        i=str(old.event_id),
    )[0]
    assert part.endswith("event_audit_log_default")


@settings(
    max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)
@given(st.text(max_size=200))
def test_any_message_text_round_trips(pg: pg8000.native.Connection, message: str) -> None:
    r = row(
        int(uuid.uuid4().int % 10**9), message=message, when=datetime.now(UTC) - timedelta(days=1)
    )
    write_rows(pg, [r])
    (event,) = pg.run(
        "SELECT event FROM event_audit_log WHERE event_id = CAST(:i AS uuid)", i=str(r.event_id)
    )[0]
    assert event["message"] == message.replace("\x00", "")


@settings(
    max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)
@given(st.text(min_size=1, max_size=80), st.text(max_size=80))
def test_any_text_column_and_json_key_round_trip(
    pg: pg8000.native.Connection, team: str, key: str
) -> None:
    """Backslashes, tabs, newlines and NULs in plain columns and in JSON keys survive COPY."""
    base = row(int(uuid.uuid4().int % 10**9), when=datetime.now(UTC) - timedelta(days=1))
    r = AuditRow(**{**base.__dict__, "team": team, "hostname": team, "event": {key: "v\\\t\n\x00"}})
    assert write_rows(pg, [r]) == 1
    (got_team, got_host, event, got_id) = pg.run(
        "SELECT team, hostname, event, alert_id FROM event_audit_log"
        " WHERE event_id = CAST(:i AS uuid)",
        i=str(r.event_id),
    )[0]
    assert got_team == got_host == team.replace("\x00", "")
    assert event == {key.replace("\x00", ""): "v\\\t\n"}
    assert str(got_id) == str(r.alert_id)


@settings(
    max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)
@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2100, 1, 1),
        timezones=st.timezones(),
    ),
    st.none() | st.integers(min_value=-(2**31), max_value=2**31 - 1),
    st.none() | st.integers(min_value=-(2**15), max_value=2**15 - 1),
    st.booleans(),
    st.none() | st.uuids(),
    st.none() | st.text(max_size=20),
)
def test_every_column_round_trips_with_any_offset_and_nulls(
    pg: pg8000.native.Connection,
    when: datetime,
    rule: int | None,
    severity: int | None,
    forwarded: bool,
    alert_id: uuid.UUID | None,
    correlation: str | None,
) -> None:
    """Times in any zone land as the same instant; NULL-able columns keep their NULLs."""
    base = row(int(uuid.uuid4().int % 10**9))
    r = AuditRow(
        **{
            **base.__dict__,
            "event_time": when,
            "received_at": when,
            "matched_rule_id": rule,
            "severity": severity,
            "forwarded": forwarded,
            "alert_id": alert_id,
            "team": None,
            "correlation": correlation,
        }
    )
    assert write_rows(pg, [r]) == 1
    got = pg.run(
        "SELECT event_time, received_at, matched_rule_id, severity, forwarded, alert_id, team,"
        " correlation FROM event_audit_log WHERE event_id = CAST(:i AS uuid)",
        i=str(r.event_id),
    )[0]
    # timestamp(): aware datetimes at a fold (a DST change) never compare equal across zones
    assert got[0].timestamp() == got[1].timestamp() == when.timestamp()
    assert got[2:6] == [rule, severity, forwarded, alert_id]
    assert got[6] is None
    assert got[7] == (None if correlation is None else correlation.replace("\x00", ""))
