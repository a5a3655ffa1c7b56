"""The console's session cookie and its CSRF tokens.

A session is ``key_id.expires.nonce.signature``, signed with HMAC-SHA256 by
the API key the operator logged in with. No server-side store is needed
(any instance verifies it, Knative scales to zero), and removing or rotating
that key ends its sessions. The cookie is ``Secure; HttpOnly;
SameSite=Strict``.

CSRF: double submit. A second cookie, readable by the page, holds a token
derived from the session (HMAC of its nonce); every non-GET form or XHR must
send the same token in the ``csrf_token`` field or the ``X-CSRF-Token``
header, and it must match both the cookie and the session. Before login the
token is a random value (the login form).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from functions.admin.keys import ApiKey, KeyRing

SESSION_COOKIE = "mutt_session"
CSRF_COOKIE = "mutt_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
LIFETIME_SECONDS = 8 * 3600


def _sign(key: ApiKey, text: str) -> str:
    return hmac.new(key.secret.encode(), text.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Session:
    key: ApiKey
    nonce: str
    expires: int

    @property
    def csrf(self) -> str:
        return _sign(self.key, f"csrf.{self.nonce}")


def new_session(key: ApiKey, now: float | None = None) -> tuple[Session, str]:
    """A session and its cookie value."""
    expires = int((now or time.time()) + LIFETIME_SECONDS)
    nonce = secrets.token_hex(16)
    payload = f"{key.key_id}.{expires}.{nonce}"
    return Session(key, nonce, expires), f"{payload}.{_sign(key, payload)}"


def read_session(ring: KeyRing, cookie: str | None, now: float | None = None) -> Session | None:
    """The session a cookie proves, or ``None`` (forged, expired, or its key removed)."""
    if not cookie or len(cookie) > 512:
        return None
    parts = cookie.split(".")
    if len(parts) != 4 or not parts[1].isdigit():
        return None
    key_id, expires, nonce, signature = parts
    key = ring.by_id(key_id)
    if key is None:
        return None
    if not hmac.compare_digest(_sign(key, f"{key_id}.{expires}.{nonce}"), signature):
        return None
    if int(expires) < (now or time.time()):
        return None
    return Session(key, nonce, int(expires))


def csrf_ok(expected: str, cookie: str | None, sent: str | None) -> bool:
    """The double submit: the sent token equals the cookie's and the expected one."""
    if not cookie or not sent:
        return False
    return hmac.compare_digest(cookie, sent) and hmac.compare_digest(sent, expected)


def random_token() -> str:
    return secrets.token_hex(16)
