"""``sslmode`` in MUTT_DATABASE_URL, against the real PostgreSQL (which has TLS off here)."""

from __future__ import annotations

import ssl

import pytest

from shared.db import tls
from shared.db.connection import connect_pg, parse_database_url
from shared.errors import ConfigError, UnreachableError


def _with(url: str, query: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{query}"


@pytest.fixture
def tcp_url(servers: tuple[str, str]) -> str:
    url = servers[1]
    if parse_database_url(url).unix_sock:
        pytest.skip("TLS modes need a TCP database URL (the embedded server uses a socket)")
    return url


@pytest.fixture
def server_tls_off(tcp_url: str) -> str:
    conn = connect_pg(_with(tcp_url, "sslmode=disable"))
    try:
        if conn.run("SHOW ssl")[0][0] != "off":
            pytest.skip("this PostgreSQL offers TLS; these tests need one that does not")
    finally:
        conn.close()
    return tcp_url


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
