"""Migrations against real PostgreSQL: idempotent, complete, partitioned with a DEFAULT."""

from __future__ import annotations

import hashlib
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pg8000.native
import pytest

from mutt.db.migrate import available, current_version, migrate
from shared.db.connection import connect_pg
from shared.errors import MuttError
from tests.support.processes import mutt


@pytest.fixture
def fresh(servers: tuple[str, str]) -> Iterator[tuple[pg8000.native.Connection, str]]:
    schema = f"m_{uuid.uuid4().hex[:10]}"
    conn = connect_pg(servers[1], schema)
    yield conn, schema
    conn.run(f'DROP SCHEMA "{schema}" CASCADE')
    conn.close()


def test_migrate_twice_applies_once(fresh: tuple[pg8000.native.Connection, str]) -> None:
    conn, _ = fresh
    first = migrate(conn)
    assert [m.version for m in first] == [m.version for m in available()]
    assert migrate(conn) == []
    assert current_version(conn) == available()[-1].version


def test_tables_of_the_data_model_exist(fresh: tuple[pg8000.native.Connection, str]) -> None:
    conn, schema = fresh
    migrate(conn)
    tables = {
        r[0]
        for r in conn.run(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = :s", s=schema
        )
    }
    expected = {"alert_rules", "development_hosts", "device_teams", "event_audit_log"}
    assert expected | {"config_audit_log", "schema_migrations"} <= tables


def test_audit_log_is_partitioned_by_month_with_default(
    fresh: tuple[pg8000.native.Connection, str],
) -> None:
    conn, _ = fresh
    migrate(conn)
    parts = {
        r[0]: r[1]
        for r in conn.run(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i"
            " JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'event_audit_log'::regclass"
        )
    }
    assert parts["event_audit_log_default"] == "DEFAULT"
    this_month = datetime.now(UTC).strftime("event_audit_log_%Y_%m")
    assert this_month in parts
    assert len(parts) >= 5  # last month, this month, three ahead, default


def test_an_event_from_any_date_is_stored(fresh: tuple[pg8000.native.Connection, str]) -> None:
    conn, _ = fresh
    migrate(conn)
    for when in ("1999-01-01T00:00:00Z", datetime.now(UTC).isoformat()):
        conn.run(
            "INSERT INTO event_audit_log (event_id, event_time, received_at, hostname,"
            " handling_decision, environment, event) VALUES (:id, CAST(:t AS timestamptz), now(),"
            " 'h', 'Ignore', 'prod', '{}')",
            id=str(uuid.uuid4()),
            t=when,
        )
    rows = conn.run("SELECT tableoid::regclass::text FROM event_audit_log ORDER BY event_time")
    assert rows[0][0].endswith("event_audit_log_default")
    assert not rows[1][0].endswith("event_audit_log_default")


def test_an_edited_migration_is_refused(fresh: tuple[pg8000.native.Connection, str]) -> None:
    conn, _ = fresh
    migrate(conn)
    conn.run("UPDATE schema_migrations SET checksum = 'x' WHERE version = 1")
    with pytest.raises(MuttError, match="was changed after it was applied"):
        migrate(conn)


def test_a_database_migrated_before_3_0_is_accepted_and_its_checksums_updated(
    fresh: tuple[pg8000.native.Connection, str],
) -> None:
    """MUTT before 3.0 recorded each file's full-text checksum, comments included."""
    conn, _ = fresh
    migrate(conn)
    old_0001 = "c997ed45ea7c2db55e25a3c7ee29284e5562d4a3dd9c6b7267211817e8608f13"
    conn.run("UPDATE schema_migrations SET checksum = :c WHERE version = 1", c=old_0001)
    (mig_0002,) = [m for m in available() if m.version == 2]
    full_text = hashlib.sha256(mig_0002.sql.encode()).hexdigest()
    conn.run("UPDATE schema_migrations SET checksum = :c WHERE version = 2", c=full_text)
    assert migrate(conn) == []  # nothing applied again, nothing refused
    stored = dict(conn.run("SELECT version, checksum FROM schema_migrations"))
    assert stored == {m.version: m.checksum for m in available()}


def test_a_comment_is_not_a_schema_change() -> None:
    (mig,) = [m for m in available() if m.version == 1]
    commented = type(mig)(mig.version, mig.name, "-- another comment\n" + mig.sql)
    assert commented.checksum == mig.checksum
    edited = type(mig)(mig.version, mig.name, mig.sql.replace("CREATE TABLE", "CREATE  TABLE", 1))
    assert edited.checksum != mig.checksum


def test_handling_values_are_validated_by_the_database(
    fresh: tuple[pg8000.native.Connection, str],
) -> None:
    conn, _ = fresh
    migrate(conn)
    with pytest.raises(pg8000.native.DatabaseError):
        conn.run(
            "INSERT INTO alert_rules (match_string, prod_handling, dev_handling, team_assignment)"
            " VALUES ('x', 'Email_only', 'Ignore', 'NETO')"
        )


def test_cli_migrate_is_idempotent(servers: tuple[str, str]) -> None:
    schema = f"m_{uuid.uuid4().hex[:10]}"
    env = {
        "MUTT_DATABASE_URL": servers[1],
        "MUTT_REDIS_URL": servers[0],
        "MUTT_DATABASE_SCHEMA": schema,
        "PATH": "/usr/bin:/bin",
    }
    try:
        for expected in ("applied 0001_initial", "nothing to do"):
            proc = subprocess.run(
                mutt("db", "migrate"),
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert proc.returncode == 0, proc.stderr
            assert expected in proc.stdout
    finally:
        conn = connect_pg(servers[1])
        conn.run(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.close()
