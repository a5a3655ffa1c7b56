"""One definition of audit partition health: the janitor's gauges and ``mutt status``.

Against real PostgreSQL, each test in a schema of its own (it drops partitions).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pg8000.native
import pytest
from prometheus_client import REGISTRY

from functions.admin.status import audit_partitions
from functions.audit.writer import AuditRow, write_rows
from functions.janitor import partitions
from functions.janitor.handler import JanitorHandler
from mutt.db.migrate import migrate
from shared.config import Settings
from shared.context import Context
from shared.db.connection import connect_pg
from shared.metrics import render


@pytest.fixture
def schema(servers: tuple[str, str]) -> Iterator[str]:
    name = f"jh_{uuid.uuid4().hex[:10]}"
    conn = connect_pg(servers[1], name)
    migrate(conn)
    conn.close()
    yield name
    conn = connect_pg(servers[1], name)
    conn.run(f'DROP SCHEMA "{name}" CASCADE')
    conn.close()


@pytest.fixture
def conn(servers: tuple[str, str], schema: str) -> Iterator[pg8000.native.Connection]:
    c = connect_pg(servers[1], schema)
    yield c
    c.close()


@pytest.fixture
def janitor(settings: Settings, schema: str) -> JanitorHandler:
    return JanitorHandler(Context(settings.model_copy(update={"database_schema": schema})))


def gauge(name: str, schema: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"schema": schema})


def exposed(name: str, schema: str) -> float:
    """The sample as ``/metrics`` serves it."""
    body = render()[0].decode()
    (value,) = re.findall(rf'^{name}\{{schema="{schema}"\}} (\S+)$', body, re.M)
    return float(value)


def monthly(conn: pg8000.native.Connection) -> list[str]:
    return [p for p in partitions.partitions(conn) if not p.endswith("_default")]


def drop_months_after_this_one(conn: pg8000.native.Connection) -> None:
    this = conn.run("SELECT to_char(current_date, 'YYYY_MM')")[0][0]
    for name in monthly(conn):
        if name[-7:] > this:
            conn.run(f'DROP TABLE "{name}"')


def test_the_partitions_task_exports_months_ahead_and_default_rows(
    janitor: JanitorHandler, conn: pg8000.native.Connection, schema: str
) -> None:
    assert gauge("mutt_audit_partitions_ahead", schema) is None  # nothing measured yet
    now = datetime.now(UTC)
    ancient = datetime(2001, 1, 15, tzinfo=UTC)  # before retention: stays in DEFAULT
    row = AuditRow(uuid.uuid4(), ancient, now, "h", 1, "Ignore", "prod", "NETO", 3, False, None, {})
    write_rows(conn, [row])

    report = janitor.run("partitions")
    assert report.errors == {}
    ahead = janitor.ctx.settings.partitions_ahead_months
    assert report.results["partitions"]["months_ahead"] == ahead
    assert gauge("mutt_audit_partitions_ahead", schema) == ahead
    assert gauge("mutt_audit_partition_default_rows", schema) == 1
    assert exposed("mutt_audit_partitions_ahead", schema) == ahead
    assert exposed("mutt_audit_partition_default_rows", schema) == 1


def test_a_failing_partitions_task_still_exports_what_is_there(
    janitor: JanitorHandler, conn: pg8000.native.Connection, schema: str
) -> None:
    assert janitor.run("partitions").errors == {}
    assert (
        gauge("mutt_audit_partitions_ahead", schema) == janitor.ctx.settings.partitions_ahead_months
    )
    drop_months_after_this_one(conn)  # the runway is gone...
    conn.run("DROP FUNCTION mutt_ensure_audit_partition(date)")  # ...and cannot be rebuilt

    report = janitor.run("partitions")
    assert "partitions" in report.errors
    assert REGISTRY.get_sample_value(
        "mutt_janitor_tasks_total", {"task": "partitions", "result": "error"}
    )
    assert gauge("mutt_audit_partitions_ahead", schema) == 0  # what an alert fires on
    assert exposed("mutt_audit_partitions_ahead", schema) == 0


def test_status_reads_the_same_health_as_the_janitor(
    janitor: JanitorHandler, conn: pg8000.native.Connection, schema: str
) -> None:
    drop_months_after_this_one(conn)
    future = datetime.now(UTC).replace(day=1, year=datetime.now(UTC).year + 2)
    rows = [
        AuditRow(uuid.uuid4(), future, future, "h", 1, "Ignore", "prod", "NETO", 3, False, None, {})
        for _ in range(3)
    ]
    write_rows(conn, rows)  # no partition for that month: DEFAULT

    found = partitions.health(conn)  # read-only: nothing created, nothing moved
    assert (found.months_ahead, found.default_rows, found.default_rows_capped) == (0, 3, False)
    assert found.partitions == len(monthly(conn)) == 2  # last month and this one
    assert found.newest == max(monthly(conn))
    capped = partitions.health(conn, default_rows_cap=2)
    assert (capped.default_rows, capped.default_rows_capped) == (3, True)

    status = audit_partitions(conn)
    assert status == {
        "partitions": 2,
        "newest": found.newest,
        "months_ahead": 0,
        "default_rows": 3,
        "default_rows_capped": False,
    }

    janitor.run("partitions")
    assert audit_partitions(conn)["months_ahead"] == gauge("mutt_audit_partitions_ahead", schema)


def test_no_monthly_partition_at_all(conn: pg8000.native.Connection) -> None:
    for name in monthly(conn):
        conn.run(f'DROP TABLE "{name}"')
    found = partitions.health(conn)
    assert (found.partitions, found.newest, found.months_ahead) == (0, None, None)
    assert audit_partitions(conn)["months_ahead"] is None
