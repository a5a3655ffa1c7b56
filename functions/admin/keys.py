"""API keys with roles, from the secret ``admin_api_keys``.

The secret holds one key per line as ``role:key`` (``#`` comments and blank
lines ignored), or a JSON list of ``{"role": ..., "key": ..., "name": ...}``.
Roles are ``viewer`` (read), ``operator`` (also silences, DLQ replay,
dynamic settings) and ``admin`` (also rules, development hosts, device
teams). Keys shorter than 16 characters are refused. A presented key is
compared in constant time with every configured key, all of them every
time, so neither timing nor order reveals anything. With no key configured
nothing but the unauthenticated routes answers: admin fails closed.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass

import orjson

from shared.secrets import Secrets

log = logging.getLogger(__name__)

SECRET_NAME = "admin_api_keys"  # noqa: S105 - the name of the secret, not its value
ROLES = ("viewer", "operator", "admin")
MIN_KEY_LENGTH = 16


@dataclass(frozen=True)
class ApiKey:
    """One configured key; ``key_id`` is a fingerprint safe to log and to audit."""

    role: str
    secret: str
    name: str

    @property
    def key_id(self) -> str:
        return hashlib.sha256(self.secret.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Principal:
    """Who is calling: their role and the name written to the audit trail."""

    role: str
    name: str
    key_id: str

    def can(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


def _entry(role: object, secret: object, name: object, where: str) -> ApiKey:
    if role not in ROLES:
        raise ValueError(f"{where}: role must be one of {', '.join(ROLES)}")
    if not isinstance(secret, str) or len(secret.strip()) < MIN_KEY_LENGTH:
        raise ValueError(f"{where}: the key must be at least {MIN_KEY_LENGTH} characters")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise ValueError(f"{where}: name must be text")
    key = ApiKey(str(role), secret.strip(), "")
    label = name.strip() if isinstance(name, str) else f"api-{role}-{key.key_id}"
    return ApiKey(key.role, key.secret, label)


def parse_keys(text: str | None) -> list[ApiKey]:
    """The keys of the secret; ``ValueError`` names the bad entry (never its key)."""
    if not text or not text.strip():
        return []
    stripped = text.strip()
    if stripped.startswith(("[", "{")):
        try:
            doc = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            raise ValueError("not valid JSON") from None
        if isinstance(doc, dict):
            doc = doc.get("keys")
        if not isinstance(doc, list):
            raise ValueError('expected a JSON list of {"role", "key", "name"} objects')
        found = []
        for number, item in enumerate(doc, 1):
            if not isinstance(item, dict):
                raise ValueError(f"entry #{number}: expected an object")
            found.append(_entry(item.get("role"), item.get("key"), item.get("name"), f"#{number}"))
        return found
    found = []
    for number, raw in enumerate(stripped.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        role, sep, secret = line.partition(":")
        if not sep:
            raise ValueError(f"line {number}: expected role:key")
        found.append(_entry(role.strip(), secret, None, f"line {number}"))
    return found


class KeyRing:
    """The configured keys, re-read through the secrets chain (rotation needs no restart)."""

    def __init__(self, secrets: Secrets) -> None:
        self._secrets = secrets
        self._parsed: tuple[str | None, list[ApiKey]] = (None, [])

    def keys(self) -> list[ApiKey]:
        text = self._secrets.get(SECRET_NAME)
        if text != self._parsed[0]:
            try:
                keys = parse_keys(text)
            except ValueError as exc:
                log.error("secret %s ignored: %s", SECRET_NAME, exc)
                keys = []
            self._parsed = (text, keys)
        return self._parsed[1]

    def authenticate(self, presented: str | None) -> ApiKey | None:
        """The key matching ``presented``, comparing with every key in constant time."""
        if not presented:
            return None
        candidate = presented.encode()
        found = None
        for key in self.keys():
            if hmac.compare_digest(candidate, key.secret.encode()):
                found = key
        return found

    def by_id(self, key_id: str) -> ApiKey | None:
        for key in self.keys():
            if hmac.compare_digest(key.key_id, key_id):
                return key
        return None


def principal(key: ApiKey) -> Principal:
    return Principal(key.role, key.name, key.key_id)
