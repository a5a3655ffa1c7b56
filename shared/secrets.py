"""Secrets through one provider chain: Vault, then mounted files, then environment.

A secret named ``ingest_api_keys`` is read from the Vault KV entry (when
``MUTT_VAULT_ADDR`` is set), else from ``<MUTT_SECRETS_DIR>/ingest_api_keys``
(a Kubernetes / Knative secret mounted as files), else from the environment
variable ``MUTT_SECRET_INGEST_API_KEYS``. Values are cached briefly and
re-read, so a rotated secret takes effect without a restart. Secret values
are never logged or put into events; errors name the secret, never its value.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from shared.errors import MuttError

if TYPE_CHECKING:  # shared.vault imports hvac and requests (~100 ms): only for Vault
    from shared.vault import VaultSource

log = logging.getLogger(__name__)

ENV_PREFIX = "MUTT_SECRET_"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class SecretError(MuttError, LookupError):
    """A secret that is required but absent, or a bad secret name."""


class Secrets:
    """Look up secrets by name; ``None`` when a secret is not configured anywhere."""

    def __init__(
        self,
        directory: Path | None,
        environ: Mapping[str, str] | None = None,
        refresh_seconds: float = 30.0,
        vault: VaultSource | None = None,
    ) -> None:
        self.directory = directory
        self.vault = vault
        self._env = os.environ if environ is None else environ
        self._refresh = refresh_seconds
        self._cache: dict[str, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> str | None:
        if not _NAME.match(name):
            raise SecretError(f"invalid secret name {name[:64]!r}")
        now = time.monotonic()
        hit = self._cache.get(name)
        if hit is not None and now - hit[0] < self._refresh:
            return hit[1]
        value = self._read(name)
        with self._lock:
            self._cache[name] = (now, value)
        return value

    def require(self, name: str) -> str:
        value = self.get(name)
        if value is None or value == "":
            where = f"{self.directory}/{name}" if self.directory else "(no MUTT_SECRETS_DIR)"
            raise SecretError(
                f"secret {name!r} is not set: provide the file {where} "
                f"or the variable {ENV_PREFIX}{name.upper()}"
            )
        return value

    def _read(self, name: str) -> str | None:
        if self.vault is not None:
            from shared.vault import VaultError

            try:
                value = self.vault.get(name)
            except VaultError as exc:
                hit = self._cache.get(name)
                log.warning("Vault unavailable (%s); using the last known value of %r", exc, name)
                if hit is not None and hit[1] is not None:
                    return hit[1]  # the last good value beats no value during an outage
                value = None
            if value is not None:
                return value.strip()
        if self.directory is not None:
            path = self.directory / name
            try:
                return path.read_text().strip()
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise SecretError(
                    f"secret {name!r} could not be read from {path}: {exc.strerror}"
                ) from None
        value = self._env.get(ENV_PREFIX + name.upper())
        return value.strip() if value is not None else None


def split_list(value: str | None) -> list[str]:
    """A secret holding several values (one per line or comma-separated), e.g. API keys."""
    if not value:
        return []
    return [v.strip() for v in re.split(r"[,\n]", value) if v.strip()]
