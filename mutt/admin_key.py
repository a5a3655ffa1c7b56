"""The admin console's key for ``mutt run`` on the embedded default.

On its first start in a data directory, ``mutt run`` writes a random admin
key to ``<data-dir>/admin-api-key`` (mode 0600) and hands it to the admin
child through the secrets chain; later starts reuse it. Keys configured by
the operator (``MUTT_SECRET_ADMIN_API_KEYS``, ``MUTT_SECRETS_DIR``, Vault)
take precedence, and then no file is written.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from functions.admin.keys import SECRET_NAME
from shared.secrets import ENV_PREFIX

FILENAME = "admin-api-key"
ENV = ENV_PREFIX + SECRET_NAME.upper()


def configured(env: dict[str, str]) -> bool:
    """Whether the operator gave admin keys of their own."""
    if env.get(ENV):
        return True
    directory = env.get("MUTT_SECRETS_DIR")
    return bool(env.get("MUTT_VAULT_ADDR")) or bool(
        directory and (Path(directory) / SECRET_NAME).is_file()
    )


def ensure(data_dir: Path) -> tuple[Path, str]:
    """The key file and its key, created (0600) if it does not exist."""
    path = data_dir / FILENAME
    try:
        key = path.read_text().strip()
    except FileNotFoundError:
        key = ""
    if len(key) < 16:
        key = secrets.token_urlsafe(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key + "\n")
    os.chmod(path, 0o600)
    return path, key
