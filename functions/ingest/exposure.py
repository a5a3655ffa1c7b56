"""At start: may ingest listen where it is asked to, with the keys it has?

Ingest is the one function reachable from outside, so it fails closed: bound
to anything but loopback, it refuses to start without a key in the secret
``ingest_api_keys``, unless the operator opts out with
``MUTT_INGEST_AUTH=off`` (said in the log at every start). On a loopback
address without a key it starts open, for a laptop (``ApiKeys`` says so once).
"""

from __future__ import annotations

import ipaddress
import logging

from functions.ingest import auth
from shared.config import Settings
from shared.errors import ConfigError
from shared.secrets import ENV_PREFIX, Secrets

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    """Only addresses no other machine can reach; a name other than localhost is not."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def refusal(host: str, settings: Settings) -> str:
    where = (
        f"the file {settings.secrets_dir}/{auth.SECRET_NAME}"
        if settings.secrets_dir
        else f"a file {auth.SECRET_NAME} in MUTT_SECRETS_DIR"
    )
    return (
        f"ingest would listen on {host} with no API key: put one or more keys in the secret "
        f"{auth.SECRET_NAME} ({where}, or the variable {ENV_PREFIX}{auth.SECRET_NAME.upper()}; "
        "e.g. `openssl rand -hex 32`), or set MUTT_INGEST_AUTH=off to accept requests "
        "without a key"
    )


def check_start(settings: Settings, secrets: Secrets, host: str) -> None:
    """Raise ``ConfigError`` when ingest must not start; record what this process allows."""
    loopback = is_loopback(host)
    auth.allow_keyless(loopback)
    if settings.ingest_auth == "off":
        log.warning(
            "ingest authentication is OFF (MUTT_INGEST_AUTH=off): every request on %s is"
            " accepted without a key",
            host,
        )
        return
    if auth.configured_keys(secrets):
        return
    if not loopback:
        raise ConfigError(refusal(host, settings))
    # Open on loopback: the app says so when it starts serving (auth.ApiKeys).
