"""Generic webhook sink: the alert as JSON, optionally signed.

The body is the alert exactly as MUTT's ``io.mutt.alert.raised.v1`` data
(its JSON Schema is published), and ``Idempotency-Key`` carries the alert
id so a receiver can drop a redelivery.

With a signing secret, ``X-MUTT-Signature: t=<unix seconds>,v1=<hex>``
carries HMAC-SHA256 over ``b"<t>." + body`` (the exact bytes sent). Binding
the timestamp into the MAC lets receivers refuse replays older than their
tolerance; ``verify_signature`` is the reference check for receivers.
An optional bearer token covers receivers that authenticate instead.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping

import orjson

from functions.forward.sinks.base import SendResult
from functions.forward.sinks.http import HttpSession, post, reachable
from shared.models import Alert

SIGNATURE_HEADER = "X-MUTT-Signature"
DEFAULT_TOLERANCE_SECONDS = 300


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``X-MUTT-Signature`` value for ``body`` sent at ``timestamp``."""
    return f"t={timestamp},v1={_mac(secret, timestamp, body)}"


def verify_signature(
    secret: str,
    body: bytes,
    header: str,
    *,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """True when ``header`` signs ``body`` with ``secret`` within ``tolerance`` seconds.

    Several ``v1=`` entries are accepted, so a sender may sign with an old and
    a new secret while they rotate.
    """
    timestamp: int | None = None
    macs: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            macs.append(value)
    if timestamp is None or not macs:
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = _mac(secret, timestamp, body)
    return any(hmac.compare_digest(expected, mac) for mac in macs)


class WebhookSink:
    """POSTs each alert's JSON to a URL."""

    def __init__(
        self,
        name: str,
        url: str,
        *,
        session: HttpSession,
        timeout: float = 10.0,
        signing_secret: str | None = None,
        bearer_token: str | None = None,
        headers: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.url = url
        self.timeout = timeout
        self._session = session
        self._secret = signing_secret
        self._clock = clock
        self._headers = dict(headers or {})
        if bearer_token:
            self._headers["Authorization"] = f"Bearer {bearer_token}"
        self._secrets = tuple(s for s in (signing_secret, bearer_token) if s)

    def send(self, alert: Alert) -> SendResult:
        body = orjson.dumps(alert.model_dump(mode="json"))
        headers = {**self._headers, "Idempotency-Key": str(alert.alert_id)}
        if self._secret:
            headers[SIGNATURE_HEADER] = sign(self._secret, body, int(self._clock()))
        return post(
            self._session,
            self.url,
            body,
            headers=headers,
            timeout=self.timeout,
            secrets=self._secrets,
        )

    def health(self) -> bool:
        return reachable(self._session, self.url, self.timeout)
