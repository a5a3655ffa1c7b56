"""The relay: feeds scale-to-zero functions from the streams, over HTTP, concurrently.

On Knative the functions scale to zero and cannot hold a consumer group, so
an always-on relay reads the streams and POSTs the entries to the functions.
Knative's autoscaler scales a function on its requests in flight, so the
relay keeps a window of ``MUTT_RELAY_WINDOW`` requests in flight per stage:
that many consumers of the stage's group, each a ``StreamWorker`` thread
with this handler. Every guarantee of the worker runtime holds per request:
an entry is acknowledged only after its own outcome, in the same
``MULTI/EXEC`` that publishes its replies; a consumer that dies leaves its
entries pending for another to reclaim.

Two ways to deliver:

- ``batch`` (MUTT's own functions): up to ``MUTT_RELAY_BATCH_SIZE`` entries in
  one POST, as the stream holds them, unparsed; the function answers one
  outcome per entry (``shared.batch_protocol``), so an event costs in a
  function about what it costs in a worker.
- ``single`` (a foreign target, a Knative Broker's ingress): one binary-mode
  CloudEvent per POST; a 2xx is done, its body the reply.

Failures: an unreachable target, a timeout, 5xx, 429, or anything but the
protocol's answer is never the events' fault. The target is backed off
(exponential, capped, honouring ``Retry-After``) and the entries retried;
it never counts towards dead-lettering. Only a verdict on an event (its
``reject`` outcome, or a foreign target's 4xx on it) dead-letters it.
eventing-redis' RedisStreamSource is not used because it acknowledges
entries whose delivery failed (ADR 0001).
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import orjson
import urllib3
from cloudevents.exceptions import GenericException
from cloudevents.http import CloudEvent, from_http, to_binary

from shared.batch_protocol import BATCH, OUTCOMES, ProtocolError, decode_outcomes, encode_batch
from shared.broker.streams import Entry
from shared.envelope import FIELD, EnvelopeError, decode, from_doc
from shared.handler import Outcome
from shared.metrics import RELAY_BACKOFF, RELAY_REQUESTS

log = logging.getLogger(__name__)

Mode = Literal["batch", "single"]
RETRYABLE = frozenset({408, 425, 429})


@dataclass(frozen=True)
class Target:
    """Where a stage's entries go, and how."""

    stage: str
    url: str
    mode: Mode = "batch"


class Backoff:
    """When a target may be tried again: exponential, capped, ``Retry-After`` honoured.

    Shared by every thread of one target, so a down function is not hit by
    the whole window at once; any success resets it.
    """

    def __init__(self, base: float = 0.1, cap: float = 30.0) -> None:
        self.base = base
        self.cap = cap
        self._failures = 0
        self._until = 0.0
        self._lock = threading.Lock()

    def failed(self, retry_after: float | None = None) -> float:
        with self._lock:
            self._failures += 1
            delay = min(self.cap, self.base * 2 ** min(self._failures - 1, 30))
            delay = random.uniform(delay / 2, delay)  # noqa: S311 - jitter, not security
            if retry_after is not None:
                delay = max(delay, min(retry_after, self.cap * 10))
            self._until = max(self._until, time.monotonic() + delay)
            return delay

    def succeeded(self) -> None:
        with self._lock:
            self._failures = 0
            self._until = 0.0

    def wait(self, stop: threading.Event) -> None:
        """Sleep until the target may be tried (or ``stop`` is set)."""
        while not stop.is_set():
            left = self._until - time.monotonic()
            if left <= 0:
                return
            stop.wait(min(left, 1.0))


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds: a number, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class RelayHandler:
    """Delivers a stage's entries to its target; the answers decide the outcomes."""

    def __init__(
        self,
        target: Target,
        timeout: float = 30.0,
        stop: threading.Event | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self.target = target
        self.stage = target.stage
        self.timeout = timeout
        self.stop = stop or threading.Event()
        self.backoff = backoff or Backoff()
        # urllib3 directly (thread-safe, keep-alive, one connection per relay thread):
        # requests' sessions cost a sizeable share of the relay's CPU per request.
        self._pool = urllib3.PoolManager(maxsize=256, block=False, retries=False)

    def _post(self, body: bytes, headers: dict[str, str]) -> urllib3.BaseHTTPResponse:
        return self._pool.request(
            "POST",
            self.target.url,
            body=body,
            headers=headers,
            timeout=urllib3.Timeout(total=self.timeout),
        )

    def handle(self, events: Sequence[CloudEvent]) -> list[Outcome]:
        """The ``Handler`` protocol, for callers holding decoded events."""
        from shared.envelope import encode

        return self.handle_entries([Entry(str(e["id"]), {FIELD: encode(e)}) for e in events])

    def handle_entries(self, entries: Sequence[Entry]) -> list[Outcome]:
        """The stream worker's raw path: entries as the stream holds them."""
        if not entries:
            return []
        self.backoff.wait(self.stop)
        if self.target.mode == "batch":
            return self._post_batch(entries)
        return [self._post_single(entry) for entry in entries]

    def _failed(self, n: int, why: str, retry_after: float | None = None) -> list[Outcome]:
        delay = self.backoff.failed(retry_after)
        RELAY_BACKOFF.labels(self.stage).inc()
        log.warning("relay to %s: %s; backing off %.1fs", self.target.url, why, delay)
        return [Outcome.retry(why)] * n

    def _post_batch(self, entries: Sequence[Entry]) -> list[Outcome]:
        body = encode_batch([entry.fields.get(FIELD, b"") for entry in entries])
        headers = {"Content-Type": BATCH, "Accept": OUTCOMES}
        try:
            resp = self._post(body, headers)
        except urllib3.exceptions.HTTPError as exc:
            RELAY_REQUESTS.labels(self.stage, "unreachable").inc()
            return self._failed(len(entries), f"POST failed: {type(exc).__name__}: {exc}")
        ctype = resp.headers.get("content-type", "")
        if resp.status != 200 or not ctype.startswith(OUTCOMES):
            RELAY_REQUESTS.labels(self.stage, str(resp.status)).inc()
            why = f"answered {resp.status} ({ctype or 'no content type'}): {_text(resp)}"
            if 400 <= resp.status < 500 and resp.status not in RETRYABLE:
                why += " -- is the URL the function's, and its version this relay's?"
            retry_after = retry_after_seconds(resp.headers.get("retry-after"))
            return self._failed(len(entries), why, retry_after)
        try:
            outcomes = decode_outcomes(resp.data, len(entries))
        except ProtocolError as exc:
            RELAY_REQUESTS.labels(self.stage, "invalid").inc()
            return self._failed(len(entries), f"answered outside the protocol: {exc}")
        RELAY_REQUESTS.labels(self.stage, "200").inc()
        self.backoff.succeeded()
        return outcomes

    def _post_single(self, entry: Entry) -> Outcome:
        try:
            event = decode(entry.fields.get(FIELD, b""))
        except EnvelopeError as exc:
            return Outcome.reject(f"undecodable entry: {exc}")
        headers, body = to_binary(event)
        self.backoff.wait(self.stop)
        try:
            resp = self._post(body, dict(headers))
        except urllib3.exceptions.HTTPError as exc:
            RELAY_REQUESTS.labels(self.stage, "unreachable").inc()
            return self._failed(1, f"POST failed: {type(exc).__name__}: {exc}")[0]
        status = resp.status
        RELAY_REQUESTS.labels(self.stage, str(status)).inc()
        if status in RETRYABLE or status >= 500 or status < 200:
            retry_after = retry_after_seconds(resp.headers.get("retry-after"))
            return self._failed(1, f"answered {status}: {_text(resp)}", retry_after)[0]
        self.backoff.succeeded()
        if status >= 300:  # the target's verdict on this event
            return Outcome.reject(f"POST {self.target.url} answered {status}: {_text(resp)}")
        if status == 202 or not resp.data:
            return Outcome.ok()
        return self._replies(resp)

    def _replies(self, resp: urllib3.BaseHTTPResponse) -> Outcome:
        ctype = resp.headers.get("content-type", "")
        try:
            if ctype.startswith(BATCH):
                docs = orjson.loads(resp.data)
                if not isinstance(docs, list):
                    raise EnvelopeError("batch reply is not a JSON array")
                return Outcome.ok(*[from_doc(d) for d in docs])
            return Outcome.ok(from_http(dict(resp.headers), resp.data))
        except (GenericException, EnvelopeError, ValueError) as exc:
            return Outcome.reject(f"target replied with an invalid CloudEvent: {exc}")


def _text(resp: urllib3.BaseHTTPResponse) -> str:
    return resp.data[:300].decode("utf-8", "replace")
