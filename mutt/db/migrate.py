"""Versioned, idempotent schema migrations (``mutt db migrate``).

Migrations are the ``NNNN_name.sql`` files beside this module, applied in
order, each in its own transaction, recorded in ``schema_migrations`` with a
checksum. A PostgreSQL advisory lock makes concurrent runs (two pods starting
at once) safe: the second waits and then finds nothing to do.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

import pg8000.native

from shared.errors import MuttError

_LOCK_KEY = 0x6D757474  # "mutt"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available() -> list[Migration]:
    """The migrations shipped with this version, in order."""
    found = []
    for entry in resources.files("mutt.db.migrations").iterdir():
        if entry.name.endswith(".sql"):
            number, _, rest = entry.name.partition("_")
            found.append(Migration(int(number), rest.removesuffix(".sql"), entry.read_text()))
    return sorted(found, key=lambda m: m.version)


def migrate(conn: pg8000.native.Connection) -> list[Migration]:
    """Apply what is missing; return what was applied (empty when up to date)."""
    conn.run("SELECT pg_advisory_lock(:k)", k=_LOCK_KEY)
    try:
        conn.run(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL,"
            " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        applied = {
            int(v): c for v, c in conn.run("SELECT version, checksum FROM schema_migrations")
        }
        done = []
        for mig in available():
            if mig.version in applied:
                if applied[mig.version] != mig.checksum:
                    raise MuttError(
                        f"migration {mig.version:04d}_{mig.name} was changed after it was applied;"
                        " add a new migration instead of editing an old one"
                    )
                continue
            conn.run("BEGIN")
            try:
                conn.run(mig.sql)
                conn.run(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES (:v, :n, :c)",
                    v=mig.version,
                    n=mig.name,
                    c=mig.checksum,
                )
                conn.run("COMMIT")
            except Exception:
                conn.run("ROLLBACK")
                raise
            done.append(mig)
        return done
    finally:
        conn.run("SELECT pg_advisory_unlock(:k)", k=_LOCK_KEY)


def current_version(conn: pg8000.native.Connection) -> int:
    """The highest applied migration, 0 on an empty database."""
    exists = conn.run("SELECT to_regclass('schema_migrations') IS NOT NULL")[0][0]
    if not exists:
        return 0
    return int(conn.run("SELECT coalesce(max(version), 0) FROM schema_migrations")[0][0])
