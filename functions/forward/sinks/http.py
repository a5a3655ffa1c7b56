"""One HTTP POST and the classification of its answer, shared by every vendor sink.

Keeping the rules in one place means PagerDuty, Moogsoft, ServiceNow,
Alertmanager and webhooks retry, give up and report in the same way:

- 2xx: delivered;
- 408, 425, 429, 5xx, timeouts, connection errors: retry (``Retry-After``
  honoured, in seconds or as an HTTP date);
- any other status (other 4xx, and 3xx: a POST is never redirected, since
  a client would replay it as a GET): permanent.

``detail`` is short (status and the first 300 characters of the body) and
never carries credentials: secrets are masked, and network errors name only
the host, because webhook URLs often hold a token in their path.

The transport is urllib3 (``HttpSession``), the library under requests,
without requests' per-call session machinery (about 0.8 ms per POST): the
same connection pools, timeouts, TLS verification (requests' CA bundle, or
``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE``) and proxies from the environment
(``HTTPS_PROXY``, ``NO_PROXY`` ...), with no retries inside the client (the
engine retries) and redirects never followed.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import requests.utils
import urllib3
from urllib3.exceptions import (
    HTTPError,
    NewConnectionError,
    ProxyError,
    SSLError,
)
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from functions.forward.sinks.base import SendResult
from shared.tracing import inject_headers

BODY_CHARS = 300
RETRY_STATUSES = frozenset({408, 425, 429})
_ERRNO = re.compile(r"\[Errno -?\d+\][^'\"()\]]*")
POOLS = 10  # hosts kept (requests' HTTPAdapter default)
POOL_SIZE = 10  # connections kept per host
NO_RETRIES = urllib3.Retry(total=False, redirect=False)
# What a GET (Alertmanager's health check) used to do: follow up to 30 redirects.
FOLLOW_REDIRECTS = urllib3.Retry(
    total=None, connect=0, read=0, status=0, other=0, redirect=30, raise_on_redirect=False
)


def _tls_settings() -> dict[str, Any]:
    """Verified TLS against the CA bundle requests would use, with its overrides."""
    bundle = (
        os.environ.get("REQUESTS_CA_BUNDLE")
        or os.environ.get("CURL_CA_BUNDLE")
        or requests.utils.DEFAULT_CA_BUNDLE_PATH
    )
    where = "ca_cert_dir" if os.path.isdir(bundle) else "ca_certs"
    return {"cert_reqs": "CERT_REQUIRED", where: bundle}


class HttpSession:
    """Keep-alive connection pools for the vendor sinks (thread-safe).

    Proxies come from the environment as requests reads it
    (``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``, ``NO_PROXY``, decided
    once per scheme and host); ``.netrc`` is not read, credentials come from
    secrets only.
    """

    def __init__(self, *, pools: int = POOLS, pool_size: int = POOL_SIZE) -> None:
        self._options: dict[str, Any] = {
            "num_pools": pools,
            "maxsize": pool_size,
            **_tls_settings(),
        }
        self._direct = urllib3.PoolManager(**self._options)
        self._proxied: dict[str, urllib3.ProxyManager] = {}
        self._route: dict[str, urllib3.PoolManager] = {}
        self._lock = threading.Lock()

    def _manager(self, url: str) -> urllib3.PoolManager:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        manager = self._route.get(origin)
        if manager is None:
            proxy = requests.utils.select_proxy(url, requests.utils.get_environ_proxies(url))
            with self._lock:
                manager = self._direct if not proxy else self._proxy_manager(proxy)
                self._route[origin] = manager
        return manager

    def _proxy_manager(self, proxy: str) -> urllib3.ProxyManager:
        if "://" not in proxy:  # "proxy:3128" means http://proxy:3128, as in requests
            proxy = "http://" + proxy
        manager = self._proxied.get(proxy)
        if manager is None:
            username, password = requests.utils.get_auth_from_url(proxy)
            headers = (
                urllib3.make_headers(proxy_basic_auth=f"{username}:{password}")
                if username
                else None
            )
            manager = urllib3.ProxyManager(proxy, proxy_headers=headers, **self._options)
            self._proxied[proxy] = manager
        return manager

    def request(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float,
        retries: urllib3.Retry = NO_RETRIES,
    ) -> urllib3.BaseHTTPResponse:
        """One request, its body read (the connection goes back to its pool); may raise."""
        return self._manager(url).request(
            method,
            url,
            body=body,
            headers=dict(headers or {}),
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
            retries=retries,
            redirect=retries is not NO_RETRIES,
        )

    def close(self) -> None:
        with self._lock:
            self._direct.clear()
            for manager in self._proxied.values():
                manager.clear()
            self._proxied.clear()
            self._route.clear()

    def __enter__(self) -> HttpSession:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# What a failed call raises: urllib3's errors, and ValueError for a header or URL
# http.client refuses (its message may quote the value, so it is never shown).
NETWORK_ERRORS = (HTTPError, OSError, ValueError)


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


def _kind(exc: BaseException) -> str:
    """The class of a failure, named as requests named it."""
    if isinstance(exc, ProxyError):
        return "ProxyError"
    if isinstance(exc, SSLError):
        return "SSLError"
    if isinstance(exc, HTTPError | OSError):
        return "ConnectionError"
    return type(exc).__name__


def network_failure(exc: BaseException, url: str, timeout: float) -> SendResult:
    """A retry result for an exception, naming the host but never the path or query."""
    host = urlsplit(url).hostname or "?"
    # urllib3 counts a refused connection as a connect timeout; requests did not.
    if isinstance(exc, Urllib3Timeout | TimeoutError) and not isinstance(exc, NewConnectionError):
        return SendResult("retry", detail=f"timeout after {timeout:g}s talking to {host}")
    reason = _ERRNO.search(str(exc))
    why = reason.group(0).strip() if reason else _kind(exc)
    return SendResult("retry", detail=f"cannot reach {host}: {why}")


def _text(response: urllib3.BaseHTTPResponse) -> str:
    """The body as text, decoded as requests did (charset, else Latin-1 for text/*)."""
    encoding = requests.utils.get_encoding_from_headers(response.headers) or "utf-8"
    try:
        return response.data.decode(encoding, errors="replace")
    except LookupError:
        return response.data.decode("utf-8", errors="replace")


def post(
    session: HttpSession,
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
        if auth is not None:
            sent["Authorization"] = urllib3.make_headers(basic_auth=":".join(auth))["authorization"]
        response = session.request("POST", url, body=body, headers=sent, timeout=timeout)
    except NETWORK_ERRORS as exc:
        return network_failure(exc, url, timeout)
    status = response.status
    text = "" if 200 <= status < 300 else _text(response)
    return classify(status, text, response.headers, secrets)


def reachable(session: HttpSession, url: str, timeout: float) -> bool:
    """True when ``url`` answers anything below 500 to an unauthenticated HEAD.

    Health checks must not create events and must not spend credentials,
    so they only prove the vendor's front door answers.
    """
    try:
        response = session.request("HEAD", url, timeout=timeout)
    except NETWORK_ERRORS:
        return False
    return response.status < 500
