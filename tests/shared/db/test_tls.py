"""``sslmode`` in MUTT_DATABASE_URL, against a real PostgreSQL over TCP with TLS off.

The modes that encrypt are proven against a server with TLS on in
``tests/shared/test_tls_servers.py``.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import pytest

from shared.db import tls
from shared.db.connection import connect_pg, parse_database_url
from shared.errors import ConfigError, UnreachableError
from tests.support.servers import postgres_server


def _with(url: str, query: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{query}"


def _offers_tls(url: str) -> bool:
    """Whether the server at ``url`` offers TLS (one that insists on it does)."""
    try:
        conn = connect_pg(_with(url, "sslmode=disable"))
    except UnreachableError:
        return True
    try:
        return bool(conn.run("SHOW ssl")[0][0] != "off")
    finally:
        conn.close()


@pytest.fixture(scope="module")
def server_tls_off(tcp_servers: tuple[str, str]) -> Iterator[str]:
    """URL of a PostgreSQL over TCP that offers no TLS: the session's, or one of our own."""
    url = tcp_servers[1]
    if not _offers_tls(url):
        yield url
        return
    with postgres_server() as port:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"


def test_sslmode_defaults_to_prefer_and_rootcert_is_read() -> None:
    assert parse_database_url("postgresql://u@h/db").sslmode == "prefer"
    target = parse_database_url("postgresql://u@h/db?sslmode=verify-full&sslrootcert=/ca.pem")
    assert (target.sslmode, target.sslrootcert) == ("verify-full", "/ca.pem")


def test_unknown_sslmode_is_a_clear_config_error() -> None:
    with pytest.raises(ConfigError, match="sslmode 'allow-ish' is not one of disable, prefer"):
        parse_database_url("postgresql://u@h/db?sslmode=allow-ish")


@pytest.mark.parametrize("mode", ["disable", "prefer"])
def test_plain_modes_connect_to_a_server_without_tls(server_tls_off: str, mode: str) -> None:
    for _ in range(2):  # prefer: the second connection goes plain at once
        conn = connect_pg(_with(server_tls_off, f"sslmode={mode}"))
        try:
            assert conn.run("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") == [[False]]
        finally:
            conn.close()


@pytest.mark.parametrize("mode", ["require", "verify-ca", "verify-full"])
def test_tls_modes_refuse_a_server_without_tls(server_tls_off: str, mode: str) -> None:
    with pytest.raises(UnreachableError, match=f"does not offer TLS, which sslmode={mode}"):
        connect_pg(_with(server_tls_off, f"sslmode={mode}"))
    # prefer having gone plain for this server must not weaken the stricter modes
    connect_pg(_with(server_tls_off, "sslmode=prefer")).close()
    with pytest.raises(UnreachableError, match="does not offer TLS"):
        connect_pg(_with(server_tls_off, f"sslmode={mode}"))


def test_verifying_modes_check_the_certificate_and_only_full_checks_the_name() -> None:
    full, ca, required = (tls.client_context(m) for m in ("verify-full", "verify-ca", "require"))
    assert (full.verify_mode, full.check_hostname) == (ssl.CERT_REQUIRED, True)
    assert (ca.verify_mode, ca.check_hostname) == (ssl.CERT_REQUIRED, False)
    assert (required.verify_mode, required.check_hostname) == (ssl.CERT_NONE, False)
    assert tls.client_context("require") is required  # built once per process
