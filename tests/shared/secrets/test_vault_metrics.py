"""``mutt_secrets_vault_failures_total``: failed renewals, logins and reads, by operation.

Through the secret chain (``Secrets`` over ``VaultSource``) against the local
Vault stand-in, read from the registry and from the ``/metrics`` exposition.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from shared.metrics import render
from shared.secrets import Secrets
from shared.vault import VaultSource
from tests.support.vault import VaultStub

OPERATIONS = ("renew", "login", "read")


@pytest.fixture
def stub() -> Iterator[VaultStub]:
    server = VaultStub("role-1", "secret-1", {"redis_password": "pw"}).start()
    yield server
    server.stop()


@pytest.fixture
def secrets(stub: VaultStub, tmp_path: Path) -> Secrets:
    (tmp_path / "secret-id").write_text("secret-1\n")
    vault = VaultSource(stub.url, "role-1", tmp_path / "secret-id", refresh_seconds=0.0)
    return Secrets(None, {}, refresh_seconds=0.0, vault=vault)


def failures() -> dict[str, float]:
    """The counter as ``/metrics`` serves it (the registry must agree)."""
    body = render()[0].decode()
    found = {
        op: float(v)
        for op, v in re.findall(
            r'^mutt_secrets_vault_failures_total\{operation="(\w+)"\} (\S+)$', body, re.M
        )
    }
    for op in OPERATIONS:
        labels = {"operation": op}
        assert REGISTRY.get_sample_value("mutt_secrets_vault_failures_total", labels) == found[op]
    return found


def counted_since(before: dict[str, float]) -> dict[str, float]:
    now = failures()
    return {op: now[op] - before[op] for op in OPERATIONS}


def test_every_operation_is_exported_from_zero(secrets: Secrets) -> None:
    assert set(failures()) >= set(OPERATIONS)  # before any failure: increase() sees the 1st


def test_a_failed_renewal_is_counted_and_a_fresh_login_takes_over(
    stub: VaultStub, secrets: Secrets, caplog: pytest.LogCaptureFixture
) -> None:
    stub.lease = 0.9
    assert secrets.get("redis_password") == "pw"
    before = failures()
    stub.tokens.clear()  # Vault forgot the token: renew-self answers 403
    time.sleep(0.7)  # less than a third of the lease left: time to renew
    with caplog.at_level(logging.WARNING, logger="shared.vault"):
        assert secrets.get("redis_password") == "pw"
    assert counted_since(before) == {"renew": 1, "login": 0, "read": 0}
    assert "Vault token renewal failed (Forbidden); logging in again" in caplog.text
    assert secrets.vault is not None
    assert (secrets.vault.renewals, secrets.vault.logins) == (0, 2)


def test_a_refused_login_and_a_refused_read_are_counted(stub: VaultStub, secrets: Secrets) -> None:
    assert secrets.get("redis_password") == "pw"
    before = failures()
    stub.secret_id = "rotated-without-telling-mutt"
    stub.revoke_all = True  # the next read is refused, and so is the login after it
    assert secrets.get("redis_password") == "pw"  # the last known value
    assert counted_since(before) == {"renew": 0, "login": 1, "read": 1}


def test_an_unreachable_vault_counts_failed_reads(stub: VaultStub, secrets: Secrets) -> None:
    assert secrets.get("redis_password") == "pw"
    before = failures()
    stub.stop()
    for _ in range(3):
        assert secrets.get("redis_password") == "pw"
    assert counted_since(before) == {"renew": 0, "login": 0, "read": 3}
