"""API-key authentication for ingest, closed unless opened on purpose.

Keys come from the secret ``ingest_api_keys`` (one per line or comma-
separated, so a new key can be added before the old one is removed). A
request presents one in ``X-API-KEY`` or ``Authorization: Bearer``. Every
configured key is compared in constant time, all of them every time, so
neither timing nor order reveals anything.

With no key configured a request is refused (503: the server, not the
client, must be fixed), except in two cases an operator chose: ingest was
started on a loopback address (``mutt serve``/``mutt run`` on 127.0.0.1,
a laptop) or ``MUTT_INGEST_AUTH=off``. ``functions.ingest.exposure``
decides at start which applies.
"""

from __future__ import annotations

import enum
import hmac
import logging
import threading

from shared.secrets import Secrets, split_list

log = logging.getLogger(__name__)

SECRET_NAME = "ingest_api_keys"  # noqa: S105 - the name of the secret, not its value

# Set once per process by ``exposure.check_start`` before gunicorn forks: whether
# a process with no key may accept requests (it listens on loopback only).
_keyless_allowed = False


def allow_keyless(allowed: bool) -> None:
    """Let this process accept requests while no key is configured (loopback only)."""
    global _keyless_allowed
    _keyless_allowed = allowed


def keyless_allowed() -> bool:
    return _keyless_allowed


class Verdict(enum.Enum):
    """What the credentials of a request come to."""

    OK = "ok"
    MISSING = "missing credentials: send X-API-KEY or Authorization: Bearer"
    INVALID = "invalid credentials"
    UNCONFIGURED = "ingest has no API key configured; retry later"


def presented_key(headers: dict[str, str]) -> str | None:
    key = headers.get("x-api-key")
    if key:
        return key
    auth = headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def configured_keys(secrets: Secrets) -> list[str]:
    """The keys of the secret, in the order given (empty when it is unset)."""
    return split_list(secrets.get(SECRET_NAME))


def matches(given: str, keys: list[str]) -> bool:
    """Constant time over every key: the loop never stops at the first match."""
    candidate = given.encode()
    ok = False
    for key in keys:
        ok |= hmac.compare_digest(candidate, key.encode())
    return ok


class ApiKeys:
    def __init__(self, secrets: Secrets, mode: str = "on") -> None:
        self._secrets = secrets
        self.mode = mode
        self._warned = threading.Event()
        if mode == "on" and keyless_allowed() and not self.configured():
            log.warning(
                "ingest accepts requests without an API key: it listens on loopback only;"
                " put keys in the secret %s to require one",
                SECRET_NAME,
            )

    def configured(self) -> list[str]:
        return configured_keys(self._secrets)

    def state(self) -> str:
        """For ``/readyz``: ``ok (...)`` or the reason ingest refuses every request."""
        if self.mode == "off":
            return "ok (off: MUTT_INGEST_AUTH=off)"
        if self.configured():
            return "ok (on)"
        if keyless_allowed():
            return "ok (off: no ingest_api_keys, loopback only)"
        return "error: no ingest_api_keys configured"

    def check(self, headers: dict[str, str]) -> Verdict:
        if self.mode == "off":
            return Verdict.OK
        keys = self.configured()
        if not keys:
            if keyless_allowed():
                return Verdict.OK
            if not self._warned.is_set():
                self._warned.set()
                log.error(
                    "ingest refuses every request: the secret %r has no key (and ingest is"
                    " not limited to loopback)",
                    SECRET_NAME,
                )
            return Verdict.UNCONFIGURED
        self._warned.clear()
        given = presented_key(headers)
        if given is None:
            return Verdict.MISSING
        return Verdict.OK if matches(given, keys) else Verdict.INVALID
