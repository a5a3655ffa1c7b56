"""PostgreSQL connections with pg8000, from a ``postgresql://`` URL.

Supports TCP (``postgresql://user:pw@host:5432/db``) and Unix sockets
(``postgresql://user@/db?host=/run/postgresql``, the form the embedded
server uses). Every connection sets ``search_path`` to the configured schema.
TLS follows libpq's ``sslmode`` / ``sslrootcert`` URL parameters (see ``tls``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

import pg8000.native

from shared.db import tls
from shared.errors import ConfigError, UnreachableError
from shared.redis_client import redact


@dataclass(frozen=True)
class PgTarget:
    """Where and as whom to connect."""

    user: str
    password: str | None
    database: str
    host: str | None
    port: int
    unix_sock: str | None
    sslmode: str = tls.DEFAULT_MODE
    sslrootcert: str | None = None

    def describe(self) -> str:
        where = self.unix_sock or f"{self.host}:{self.port}"
        return f"postgresql://{self.user}@{where}/{self.database}"


def parse_database_url(url: str) -> PgTarget:
    """Split a URL into pg8000 arguments; ``ConfigError`` on nonsense."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ConfigError(f"MUTT_DATABASE_URL: unsupported scheme {parts.scheme!r}")
    query = parse_qs(parts.query)
    socket_dir = query.get("host", [None])[0]
    try:
        port = parts.port or int(query.get("port", ["5432"])[0])
    except ValueError:
        raise ConfigError("MUTT_DATABASE_URL: the port is not a number") from None
    unix_sock = None
    if socket_dir and socket_dir.startswith("/"):
        unix_sock = os.path.join(socket_dir, f".s.PGSQL.{port}")
    database = unquote(parts.path.lstrip("/")) or "postgres"
    sslmode = query.get("sslmode", [tls.DEFAULT_MODE])[0]
    if sslmode not in tls.MODES:
        raise ConfigError(
            f"MUTT_DATABASE_URL: sslmode {sslmode!r} is not one of {', '.join(tls.MODES)}"
        )
    return PgTarget(
        user=unquote(parts.username or "postgres"),
        password=unquote(parts.password) if parts.password else None,
        database=database,
        host=None if unix_sock else (parts.hostname or "127.0.0.1"),
        port=port,
        unix_sock=unix_sock,
        sslmode=sslmode,
        sslrootcert=query.get("sslrootcert", [None])[0],
    )


def connect_pg(
    url: str, schema: str = "public", *, timeout: float = 10.0, passwords: list[str] | None = None
) -> pg8000.native.Connection:
    """A native pg8000 connection with ``search_path`` set; ``UnreachableError`` if down.

    ``passwords`` (CURRENT then NEXT of a rotation) are tried in turn when
    the URL has none, so a rotated database password needs no restart:
    every new connection finds the one that works.
    """
    target = parse_database_url(url)
    candidates: list[str | None] = []
    if target.password:
        candidates.append(target.password)
    else:
        candidates.extend(passwords or [])
    if not candidates:
        candidates.append(None)
    refused: Exception | None = None
    for password in candidates:
        try:
            conn = _open(target, password, timeout)
            break
        except (pg8000.native.InterfaceError, OSError) as exc:
            raise UnreachableError(f"cannot reach PostgreSQL at {redact(url)}: {exc}") from None
        except pg8000.native.DatabaseError as exc:
            refused = exc
    else:
        assert refused is not None
        raise UnreachableError(
            f"PostgreSQL at {redact(url)} refused the connection: {pg_error(refused)[1]}"
        ) from None
    if schema != "public":
        conn.run(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    conn.run(f'SET search_path TO "{schema}"')
    return conn


def _open(target: PgTarget, password: str | None, timeout: float) -> pg8000.native.Connection:
    host = target.host or "localhost"
    server = None if target.unix_sock else (host, target.port)

    def attempt(ssl_context: object) -> pg8000.native.Connection:
        return pg8000.native.Connection(
            user=target.user,
            password=password,
            database=target.database,
            host=host,
            port=target.port,
            unix_sock=target.unix_sock,
            timeout=timeout,
            application_name="mutt",
            ssl_context=ssl_context,
        )

    try:
        return attempt(tls.ssl_argument(target.sslmode, target.sslrootcert, server))
    except pg8000.native.InterfaceError as exc:
        if not tls.refused_tls(exc):
            raise
        if target.sslmode != "prefer":
            raise pg8000.native.InterfaceError(
                f"the server does not offer TLS, which sslmode={target.sslmode} requires"
            ) from None
    assert server is not None  # a Unix socket never asks for TLS, so it is never refused
    tls.remember_plain(server)  # prefer: this server has TLS off; go plain from now on
    return attempt(False)


def pg_error(exc: Exception) -> tuple[str, str]:
    """(SQLSTATE, human message) of a pg8000 error: the server's fields come as a dict."""
    if exc.args and isinstance(exc.args[0], dict):
        fields = exc.args[0]
        return str(fields.get("C", "")), str(fields.get("M", fields))
    return "", str(exc)
