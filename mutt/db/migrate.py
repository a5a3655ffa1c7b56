"""Versioned, idempotent schema migrations (``mutt db migrate``).

Migrations are the ``NNNN_name.sql`` files beside this module, applied in
order, each in its own transaction, recorded in ``schema_migrations`` with a
checksum of its SQL without comment lines: editing a comment is not a schema
change, editing a statement is refused. A PostgreSQL advisory lock makes
concurrent runs (two pods starting at once) safe: the second waits and then
finds nothing to do.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

import pg8000.native

from shared.errors import MuttError

_LOCK_KEY = 0x6D757474  # "mutt"

# Checksums recorded by MUTT before 3.0, over each file's full text, comments
# included. A database migrated then still holds them; they are accepted once
# and replaced by today's. Only 0001's text changed since (its first comment
# line named a design file that was never in the repository); the others'
# old checksum is the one of their unchanged text.
_FULL_TEXT_CHECKSUMS = {1: "c997ed45ea7c2db55e25a3c7ee29284e5562d4a3dd9c6b7267211817e8608f13"}


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """SHA-256 of the statements: lines that are only a ``--`` comment do not count."""
        code = "\n".join(
            line for line in self.sql.splitlines() if not line.lstrip().startswith("--")
        )
        return hashlib.sha256(code.encode()).hexdigest()

    @property
    def earlier_checksums(self) -> set[str]:
        """What MUTT before 3.0 recorded for this migration (full text, comments included)."""
        full_text = hashlib.sha256(self.sql.encode()).hexdigest()
        return {full_text, _FULL_TEXT_CHECKSUMS.get(self.version, full_text)}


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
                if applied[mig.version] in mig.earlier_checksums:
                    conn.run(
                        "UPDATE schema_migrations SET checksum = :c WHERE version = :v",
                        c=mig.checksum,
                        v=mig.version,
                    )
                elif applied[mig.version] != mig.checksum:
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
