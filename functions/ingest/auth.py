"""API-key authentication for ingest.

Keys come from the secret ``ingest_api_keys`` (one per line or comma-
separated, so a new key can be added before the old one is removed). A
request presents one in ``X-API-KEY`` or ``Authorization: Bearer``. Every
configured key is compared in constant time, all of them every time, so
neither timing nor order reveals anything. With no key configured,
authentication is off and ``/readyz`` says so.
"""

from __future__ import annotations

import hmac

from shared.secrets import Secrets, split_list

SECRET_NAME = "ingest_api_keys"  # noqa: S105 - the name of the secret, not its value


def presented_key(headers: dict[str, str]) -> str | None:
    key = headers.get("x-api-key")
    if key:
        return key
    auth = headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


class ApiKeys:
    def __init__(self, secrets: Secrets) -> None:
        self._secrets = secrets

    def configured(self) -> list[str]:
        return split_list(self._secrets.get(SECRET_NAME))

    @property
    def enabled(self) -> bool:
        return bool(self.configured())

    def check(self, headers: dict[str, str]) -> str | None:
        """``None`` when the request may pass, else the reason for a 401."""
        keys = self.configured()
        if not keys:
            return None
        given = presented_key(headers)
        if given is None:
            return "missing credentials: send X-API-KEY or Authorization: Bearer"
        ok = False
        candidate = given.encode()
        for key in keys:
            ok |= hmac.compare_digest(candidate, key.encode())
        return None if ok else "invalid credentials"
