"""TLS to PostgreSQL and Redis, proven against real servers with TLS on.

The servers present a certificate for ``localhost`` signed by a CA the test
makes. What each mode promises: ``require`` encrypts but checks nothing;
``verify-ca`` checks the CA; ``verify-full`` (and ``rediss://``) check the
CA and the host name. So the right CA connects, a wrong CA is refused, and
127.0.0.1 (not a name in the certificate) is refused where names are checked.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from shared.config import load_settings
from shared.context import Context
from shared.db.connection import connect_pg
from shared.errors import UnreachableError
from shared.redis_client import connect_redis
from tests.support.processes import mutt
from tests.support.tls import Pki, make_pki, postgres_tls, redis_tls

pytestmark = pytest.mark.slow

NAME_MISMATCH = r"IP address mismatch|doesn't match|hostname"
SSL_IN_USE = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"


@pytest.fixture(scope="module")
def pki() -> Iterator[Pki]:
    with tempfile.TemporaryDirectory(prefix="mutt-pki-") as directory:
        yield make_pki(Path(directory))


@pytest.fixture(scope="module")
def pg_port(pki: Pki) -> Iterator[int]:
    with postgres_tls(pki) as port:
        yield port


@pytest.fixture(scope="module")
def redis_port(pki: Pki) -> Iterator[int]:
    with (
        tempfile.TemporaryDirectory(prefix="mutt-redistls-") as directory,
        redis_tls(pki, Path(directory)) as port,
    ):
        yield port


def pg_url(host: str, port: int, mode: str, ca: Path | None = None) -> str:
    query = f"sslmode={mode}" + (f"&sslrootcert={ca}" if ca else "")
    return f"postgresql://postgres@{host}:{port}/postgres?{query}"


def encrypted(url: str) -> bool:
    conn = connect_pg(url)
    try:
        return bool(conn.run(SSL_IN_USE)[0][0])
    finally:
        conn.close()


# ------------------------------------------------------------------ PostgreSQL


def test_require_and_prefer_encrypt_without_checking_the_certificate(
    pg_port: int, pki: Pki
) -> None:
    assert encrypted(pg_url("127.0.0.1", pg_port, "require"))
    assert encrypted(pg_url("127.0.0.1", pg_port, "require", pki.other_ca))  # nothing checked
    assert encrypted(pg_url("127.0.0.1", pg_port, "prefer"))
    assert not encrypted(pg_url("127.0.0.1", pg_port, "disable"))


def test_verify_ca_checks_the_ca_not_the_name(pg_port: int, pki: Pki) -> None:
    assert encrypted(pg_url("127.0.0.1", pg_port, "verify-ca", pki.ca))  # a name not in the cert
    with pytest.raises(UnreachableError, match="certificate verify failed"):
        connect_pg(pg_url("127.0.0.1", pg_port, "verify-ca", pki.other_ca))


def test_verify_full_checks_the_ca_and_the_name(pg_port: int, pki: Pki) -> None:
    assert encrypted(pg_url("localhost", pg_port, "verify-full", pki.ca))
    with pytest.raises(UnreachableError, match="certificate verify failed"):
        connect_pg(pg_url("localhost", pg_port, "verify-full", pki.other_ca))
    with pytest.raises(UnreachableError, match=NAME_MISMATCH):
        connect_pg(pg_url("127.0.0.1", pg_port, "verify-full", pki.ca))


def test_mutt_database_url_carries_the_mode_to_every_connection(pg_port: int, pki: Pki) -> None:
    good = pg_url("localhost", pg_port, "verify-full", pki.ca)
    ctx = Context(load_settings({"MUTT_DATABASE_URL": good, "MUTT_REDIS_URL": "redis://x/0"}))
    assert ctx.pg().run(SSL_IN_USE) == [[True]]
    ctx.drop_pg()
    migrated = subprocess.run(
        mutt("db", "migrate"),
        env={"PATH": "/usr/bin:/bin", "MUTT_DATABASE_URL": good, "MUTT_REDIS_URL": "redis://x/0"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert migrated.returncode == 0, migrated.stderr
    assert "database at version" in migrated.stdout
    wrong = pg_url("localhost", pg_port, "verify-full", pki.other_ca)
    refused = subprocess.run(
        mutt("db", "migrate"),
        env={"PATH": "/usr/bin:/bin", "MUTT_DATABASE_URL": wrong, "MUTT_REDIS_URL": "redis://x/0"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert refused.returncode == 3
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith("mutt: cannot reach PostgreSQL") and "certificate verify failed" in line


# ------------------------------------------------------------------ Redis


def rediss(host: str, port: int, ca: Path) -> str:
    return f"rediss://{host}:{port}/0?ssl_ca_certs={ca}"


def test_rediss_with_the_right_ca_and_name_connects(redis_port: int, pki: Pki) -> None:
    client = connect_redis(rediss("localhost", redis_port, pki.ca))
    try:
        client.set("mutt:tls-test", b"v")
        assert client.get("mutt:tls-test") == b"v"
        assert client.connection_pool.connection_class is redis.SSLConnection
    finally:
        client.close()
    env = {
        "MUTT_REDIS_URL": rediss("localhost", redis_port, pki.ca),
        "MUTT_DATABASE_URL": "postgresql://unused@127.0.0.1:1/x",
    }
    assert Context(load_settings(env)).redis.ping()


def test_rediss_refuses_a_wrong_ca(redis_port: int, pki: Pki) -> None:
    with pytest.raises(UnreachableError, match="certificate verify failed"):
        connect_redis(rediss("localhost", redis_port, pki.other_ca))


def test_rediss_refuses_a_name_not_in_the_certificate(redis_port: int, pki: Pki) -> None:
    with pytest.raises(UnreachableError, match=NAME_MISMATCH):
        connect_redis(rediss("127.0.0.1", redis_port, pki.ca))
    # Only the URL can turn the name check off, and then the CA is still checked.
    off = rediss("127.0.0.1", redis_port, pki.ca) + "&ssl_check_hostname=false"
    connect_redis(off).close()
    with pytest.raises(UnreachableError, match="certificate verify failed"):
        connect_redis(rediss("127.0.0.1", redis_port, pki.other_ca) + "&ssl_check_hostname=false")


def test_plain_redis_to_a_tls_port_is_a_clear_error(redis_port: int) -> None:
    with pytest.raises(
        UnreachableError, match=f"cannot reach Redis at redis://localhost:{redis_port}"
    ):
        connect_redis(f"redis://localhost:{redis_port}/0", timeout=2)
