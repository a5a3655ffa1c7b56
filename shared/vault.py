"""Vault as the first secret source: AppRole login, KV v2 reads, token renewal.

The secret id comes from a file (mounted, never in the environment). All of
MUTT's secrets live in one KV v2 entry (``<mount>/data/<path>``) whose keys
are the secret names (``ingest_api_keys``, ``redis_password``, ...). The
token is renewed when less than a third of its lease is left and, if
renewal fails or the token was revoked, replaced by a fresh login. Every
failed renewal, login and read counts in ``mutt_secrets_vault_failures_total``.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions
import requests

from shared.errors import MuttError
from shared.metrics import VAULT_FAILURES

log = logging.getLogger(__name__)


class VaultError(MuttError):
    """Vault is configured but cannot be used; the message never holds a secret."""


class VaultSource:
    def __init__(
        self,
        addr: str,
        role_id: str,
        secret_id_file: Path,
        mount: str = "secret",
        path: str = "mutt",
        refresh_seconds: float = 30.0,
        timeout: float = 5.0,
    ) -> None:
        self.addr = addr
        self._role_id = role_id
        self._secret_id_file = secret_id_file
        self.mount = mount
        self.path = path
        self._refresh = refresh_seconds
        self._client = hvac.Client(url=addr, timeout=timeout)
        self._lease_end = 0.0
        self._lease = 0.0
        self._values: dict[str, str] = {}
        self._read_at = -1e9
        self._lock = threading.Lock()
        self.logins = 0
        self.renewals = 0
        for operation in ("renew", "login", "read"):  # series from 0: increase() sees the 1st
            VAULT_FAILURES.labels(operation)

    def get(self, name: str) -> str | None:
        with self._lock:
            if time.monotonic() - self._read_at >= self._refresh:
                self._read()
            return self._values.get(name)

    def _read(self) -> None:
        self._ensure_token()
        try:
            answer = self._kv()
        except (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized):
            self._login()  # revoked or expired behind our back: one fresh login
            answer = self._kv()
        data: Any = answer.get("data", {}).get("data", {})
        if not isinstance(data, dict):
            VAULT_FAILURES.labels("read").inc()
            raise VaultError(f"Vault entry {self.mount}/{self.path} is not a key/value map")
        self._values = {str(k): str(v) for k, v in data.items() if v is not None}
        self._read_at = time.monotonic()

    def _kv(self) -> dict[str, Any]:
        try:
            result: dict[str, Any] = self._client.secrets.kv.v2.read_secret_version(
                path=self.path, mount_point=self.mount, raise_on_deleted_version=True
            )
        except hvac.exceptions.InvalidPath:
            VAULT_FAILURES.labels("read").inc()
            raise VaultError(f"Vault has no entry {self.mount}/{self.path}") from None
        except requests.RequestException as exc:
            VAULT_FAILURES.labels("read").inc()
            raise VaultError(f"cannot reach Vault at {self.addr}: {type(exc).__name__}") from None
        except hvac.exceptions.VaultError:  # 403 on a revoked token (_read logs in again), 5xx
            VAULT_FAILURES.labels("read").inc()
            raise
        return result

    def _ensure_token(self) -> None:
        now = time.monotonic()
        if not self._client.token or now >= self._lease_end:
            self._login()
        elif self._lease and self._lease_end - now < self._lease / 3:
            self._renew()

    def _renew(self) -> None:
        try:
            auth = self._client.auth.token.renew_self()["auth"]
            self._set_lease(auth)
            self.renewals += 1
        except (hvac.exceptions.VaultError, requests.RequestException, KeyError) as exc:
            VAULT_FAILURES.labels("renew").inc()
            log.warning("Vault token renewal failed (%s); logging in again", type(exc).__name__)
            self._login()

    def _login(self) -> None:
        try:
            secret_id = self._secret_id_file.read_text().strip()
        except OSError as exc:
            VAULT_FAILURES.labels("login").inc()
            raise VaultError(
                f"cannot read the Vault secret id file {self._secret_id_file}: {exc.strerror}"
            ) from None
        try:
            answer = self._client.auth.approle.login(role_id=self._role_id, secret_id=secret_id)
        except (
            hvac.exceptions.InvalidRequest,
            hvac.exceptions.Forbidden,
            hvac.exceptions.Unauthorized,
        ):
            VAULT_FAILURES.labels("login").inc()
            raise VaultError(
                "Vault refused the AppRole login (check role id and secret id)"
            ) from None
        except requests.RequestException as exc:
            VAULT_FAILURES.labels("login").inc()
            raise VaultError(f"cannot reach Vault at {self.addr}: {type(exc).__name__}") from None
        self._set_lease(answer["auth"])
        self.logins += 1

    def _set_lease(self, auth: dict[str, Any]) -> None:
        self._client.token = auth["client_token"]
        self._lease = float(auth.get("lease_duration") or 0)
        self._lease_end = time.monotonic() + (self._lease if self._lease else 1e12)
