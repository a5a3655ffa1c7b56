"""One HTTP POST and the classification of its answer, shared by every vendor sink.

Keeping the rules in one place means PagerDuty, Moogsoft, ServiceNow,
Alertmanager and webhooks retry, give up and report in the same way:

- 2xx: delivered;
- 408, 425, 429, 5xx, timeouts, connection errors: retry (``Retry-After``
  honoured, in seconds or as an HTTP date);
- any other status (other 4xx, and 3xx: a POST is never redirected, since
  requests would replay it as a GET): permanent.

``detail`` is short (status and the first 300 characters of the body) and
never carries credentials: secrets are masked, and network errors name only
the host, because webhook URLs often hold a token in their path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import requests

from functions.forward.sinks.base import SendResult
from shared.tracing import inject_headers

BODY_CHARS = 300
RETRY_STATUSES = frozenset({408, 425, 429})
_ERRNO = re.compile(r"\[Errno -?\d+\][^'\"()\]]*")


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value; ``None`` if absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if 0 <= seconds < float("inf") else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def mask(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every (non-trivial) secret replaced by ``***``."""
    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def classify(
    status: int,
    body: str,
    headers: Mapping[str, str] | None = None,
    secrets: Iterable[str] = (),
) -> SendResult:
    """The outcome of one HTTP answer."""
    if 200 <= status < 300:
        return SendResult("delivered", status=status)
    snippet = " ".join(mask(body, secrets)[:BODY_CHARS].split())
    detail = f"HTTP {status}: {snippet}" if snippet else f"HTTP {status}"
    if status in RETRY_STATUSES or status >= 500:
        after = parse_retry_after((headers or {}).get("Retry-After"))
        return SendResult("retry", status=status, detail=detail, retry_after_seconds=after)
    if 300 <= status < 400:
        detail = f"HTTP {status}: redirect not followed, fix the sink url"
    return SendResult("permanent", status=status, detail=detail)


def network_failure(exc: requests.RequestException, url: str, timeout: float) -> SendResult:
    """A retry result for an exception, naming the host but never the path or query."""
    host = urlsplit(url).hostname or "?"
    if isinstance(exc, requests.Timeout):
        return SendResult("retry", detail=f"timeout after {timeout:g}s talking to {host}")
    reason = _ERRNO.search(str(exc))
    why = reason.group(0).strip() if reason else type(exc).__name__
    return SendResult("retry", detail=f"cannot reach {host}: {why}")


def post(
    session: requests.Session,
    url: str,
    body: bytes,
    *,
    headers: Mapping[str, str],
    timeout: float,
    auth: tuple[str, str] | None = None,
    secrets: Iterable[str] = (),
) -> SendResult:
    """POST ``body`` (already-encoded JSON) and classify the answer; never raises."""
    sent = {"Content-Type": "application/json", "Accept": "application/json", **headers}
    inject_headers(sent)  # W3C traceparent: the vendor call joins the alert's trace
    try:
        response = session.post(
            url,
            data=body,
            headers=sent,
            timeout=timeout,
            auth=auth,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        return network_failure(exc, url, timeout)
    with response:
        text = "" if 200 <= response.status_code < 300 else response.text
        return classify(response.status_code, text, response.headers, secrets)


def reachable(session: requests.Session, url: str, timeout: float) -> bool:
    """True when ``url`` answers anything below 500 to an unauthenticated HEAD.

    Health checks must not create events and must not spend credentials,
    so they only prove the vendor's front door answers.
    """
    try:
        response = session.head(url, timeout=timeout, allow_redirects=False)
    except requests.RequestException:
        return False
    response.close()
    return response.status_code < 500
