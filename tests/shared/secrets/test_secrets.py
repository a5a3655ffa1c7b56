"""The secret provider chain: Vault (AppRole, KV v2, renewal, re-login), files, environment."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.secrets import SecretError, Secrets
from shared.vault import VaultError, VaultSource
from tests.support.vault import VaultStub


@pytest.fixture
def stub() -> Iterator[VaultStub]:
    server = VaultStub(
        "role-1", "secret-1", {"ingest_api_keys": "from-vault", "redis_password": "pw"}
    ).start()
    yield server
    server.stop()


def source(
    stub: VaultStub, tmp_path: Path, refresh: float = 0.0, secret: str = "secret-1"
) -> VaultSource:
    sid = tmp_path / "secret-id"
    sid.write_text(secret + "\n")
    return VaultSource(stub.url, "role-1", sid, refresh_seconds=refresh)


def test_chain_order_vault_then_files_then_environment(stub: VaultStub, tmp_path: Path) -> None:
    files = tmp_path / "secrets"
    files.mkdir()
    (files / "ingest_api_keys").write_text("from-file")
    (files / "only_file").write_text("file-value\n")
    env = {"MUTT_SECRET_ONLY_ENV": "env-value", "MUTT_SECRET_ONLY_FILE": "shadowed"}
    secrets = Secrets(files, env, vault=source(stub, tmp_path))
    assert secrets.get("ingest_api_keys") == "from-vault"
    assert secrets.get("only_file") == "file-value"
    assert secrets.get("only_env") == "env-value"
    assert secrets.get("absent") is None
    with pytest.raises(SecretError, match="secret 'absent' is not set"):
        secrets.require("absent")


def test_rotated_values_are_picked_up_without_restart(stub: VaultStub, tmp_path: Path) -> None:
    secrets = Secrets(None, {}, refresh_seconds=0.0, vault=source(stub, tmp_path))
    assert secrets.get("ingest_api_keys") == "from-vault"
    stub.data["ingest_api_keys"] = "rotated"
    assert secrets.get("ingest_api_keys") == "rotated"


def test_token_is_renewed_before_expiry(stub: VaultStub, tmp_path: Path) -> None:
    stub.lease = 0.9
    vault = source(stub, tmp_path)
    vault.get("redis_password")
    time.sleep(0.7)  # less than a third of the lease left
    vault.get("redis_password")
    assert vault.renewals == 1
    assert vault.logins == 1


def test_expired_or_revoked_token_means_a_new_login(stub: VaultStub, tmp_path: Path) -> None:
    stub.lease = 0.3
    vault = source(stub, tmp_path)
    vault.get("redis_password")
    time.sleep(0.4)
    assert vault.get("redis_password") == "pw"
    assert vault.logins == 2
    stub.lease = 60
    vault.get("redis_password")
    stub.revoke_all = True  # Vault forgets every token
    assert vault.get("redis_password") == "pw"
    assert vault.logins == 3


def test_wrong_secret_id_and_unreachable_vault_are_clear_errors(
    stub: VaultStub, tmp_path: Path
) -> None:
    with pytest.raises(VaultError, match="refused the AppRole login"):
        source(stub, tmp_path, secret="wrong").get("x")
    missing = VaultSource(stub.url, "role-1", tmp_path / "nope")
    with pytest.raises(VaultError, match="cannot read the Vault secret id file"):
        missing.get("x")
    down = VaultSource("http://127.0.0.1:1", "role-1", tmp_path / "secret-id")
    (tmp_path / "secret-id").write_text("secret-1")
    with pytest.raises(VaultError, match="cannot reach Vault"):
        down.get("x")


@pytest.mark.skipif(
    not os.environ.get("VAULT_ADDR"),
    reason="no real Vault (set VAULT_ADDR, see local/docker-compose.yml)",
)
def test_against_a_real_vault(tmp_path: Path) -> None:
    """Needs VAULT_ADDR, VAULT_TOKEN (to prepare) and an AppRole: run under docker compose."""
    import hvac

    admin = hvac.Client(url=os.environ["VAULT_ADDR"], token=os.environ["VAULT_TOKEN"])
    if "approle/" not in admin.sys.list_auth_methods():
        admin.sys.enable_auth_method("approle")
    admin.write("auth/approle/role/mutt-test", token_ttl="60s", token_policies="default,mutt-test")
    admin.sys.create_or_update_policy(
        "mutt-test", 'path "secret/data/mutt-test" { capabilities = ["read"] }'
    )
    admin.secrets.kv.v2.create_or_update_secret(path="mutt-test", secret={"probe": "ok"})
    role_id = admin.read("auth/approle/role/mutt-test/role-id")["data"]["role_id"]
    secret_id = admin.write("auth/approle/role/mutt-test/secret-id")["data"]["secret_id"]
    (tmp_path / "sid").write_text(secret_id)
    vault = VaultSource(os.environ["VAULT_ADDR"], role_id, tmp_path / "sid", path="mutt-test")
    assert vault.get("probe") == "ok"


def test_a_vault_outage_keeps_the_last_known_values(stub: VaultStub, tmp_path: Path) -> None:
    files = tmp_path / "secrets"
    files.mkdir()
    (files / "only_file").write_text("file-value")
    secrets = Secrets(files, {}, refresh_seconds=0.0, vault=source(stub, tmp_path))
    assert secrets.get("ingest_api_keys") == "from-vault"
    stub.stop()  # Vault goes away
    assert secrets.get("ingest_api_keys") == "from-vault"
    assert secrets.get("only_file") == "file-value"  # the rest of the chain still answers
