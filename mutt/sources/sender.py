"""Deliver source events to ingest: batches, backpressure, a bounded buffer.

Events wait in a bounded in-memory buffer and one sender thread POSTs them
in order (a source that needs more requests in flight runs several senders,
"lanes", each keeping its own events in order). Batches go out as
``application/cloudevents-batch+json`` (ingest takes them unless
``MUTT_INGEST_CLOUDEVENTS_BATCH=false``): one request carries many
events yet each keeps its own CloudEvent ``source`` + ``id``, so a batch
sent again after a lost answer is deduplicated by ingest event by event. A
sink without batch mode (ingest with it off answers 415, a Knative Broker)
gets one structured CloudEvent per request instead.

A batch leaves the buffer only once ingest has answered it for good (2xx,
or 400 for events it refused). On 429 / 503 the sender waits as long as
``Retry-After`` says, on other failures it backs off exponentially with
jitter, and meanwhile the buffer fills; only a full buffer drops events, and
every drop is counted (``mutt_source_events_total{outcome="dropped"}``) and
logged. ``close(grace)`` keeps sending until the buffer is empty or the
grace period is over, then counts what is left as lost.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

import orjson
import requests
from prometheus_client import Counter, Gauge

from functions.ingest.auth import SECRET_NAME
from shared.secrets import SecretError, Secrets, split_list

log = logging.getLogger(__name__)

CE_BATCH = "application/cloudevents-batch+json"
CE_JSON = "application/cloudevents+json"
Mode = Literal["batch", "single"]

SOURCE_EVENTS = Counter(
    "mutt_source_events_total",
    "events a source (syslog, trap) handled, by outcome",
    ["source", "outcome"],
)
SOURCE_REQUESTS = Counter(
    "mutt_source_requests_total", "POSTs from a source to ingest, by result", ["source", "result"]
)
SOURCE_BUFFERED = Gauge(
    "mutt_source_buffered_events", "events waiting in a source's buffer", ["source"]
)


def api_key(secrets: Secrets | None) -> str | None:
    """The first key of the secret ``ingest_api_keys`` (the one clients present), if any."""
    if secrets is None:
        return None
    keys = split_list(secrets.get(SECRET_NAME))
    return keys[0] if keys else None


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` in seconds (a number or an HTTP date); ``None`` if absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass(frozen=True, slots=True)
class PostResult:
    """How ingest answered one request.

    ``done``: the events are settled (accepted, duplicates or refused for
    good); ``retry``: send them again after ``delay`` (or a backoff);
    ``too_large``: 413, send fewer; ``unsupported``: 415, the sink has no
    batch mode.
    """

    kind: Literal["done", "retry", "too_large", "unsupported"]
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    delay: float | None = None
    detail: str = ""


class IngestClient:
    """POST CloudEvents to ingest and classify the answer; retrying is the caller's policy."""

    def __init__(
        self,
        url: str,
        secrets: Secrets | None,
        *,
        timeout: float = 10.0,
        user_agent: str = "mutt-source",
        session: requests.Session | None = None,
    ) -> None:
        self.url = url
        self.secrets = secrets
        self.timeout = timeout
        self.user_agent = user_agent
        self.session = session or requests.Session()

    def post(self, bodies: list[bytes], mode: Mode, timeout: float | None = None) -> PostResult:
        """Send ``bodies`` (encoded CloudEvents) as one batch, or the single one as is."""
        if mode == "batch":
            payload, ctype = b"[" + b",".join(bodies) + b"]", CE_BATCH
        else:
            if len(bodies) != 1:
                raise ValueError("single mode sends one event per request")
            payload, ctype = bodies[0], CE_JSON
        try:
            headers = self._headers(ctype)
        except SecretError as exc:
            return PostResult("retry", detail=str(exc))
        try:
            response = self.session.post(
                self.url, data=payload, headers=headers, timeout=timeout or self.timeout
            )
        except requests.RequestException as exc:
            return PostResult(
                "retry", detail=f"{self.url}: {type(exc).__name__}: {_first_line(exc)}"
            )
        return classify(response, len(bodies))

    def _headers(self, ctype: str) -> dict[str, str]:
        headers = {"Content-Type": ctype, "User-Agent": self.user_agent}
        key = api_key(self.secrets)
        if key:
            headers["X-API-KEY"] = key
        return headers


def classify(response: requests.Response, count: int) -> PostResult:
    """An ingest answer as a ``PostResult`` (see app.py for what each status means)."""
    status = response.status_code
    body = _json(response)
    if 200 <= status < 300:
        return PostResult(
            "done",
            accepted=_int(body.get("accepted"), count),
            duplicates=_int(body.get("duplicates"), 0),
        )
    detail = f"HTTP {status}: {str(body.get('error', response.text[:200])).strip()}"
    if status in (429, 503):
        return PostResult(
            "retry", delay=retry_after(response.headers.get("Retry-After")), detail=detail
        )
    if status == 413:
        return PostResult("too_large", detail=detail)
    if status == 415:
        return PostResult("unsupported", detail=detail)
    if status == 400:
        errors = body.get("errors")
        refused = len(errors) if isinstance(errors, list) and errors else count
        accepted = _int(body.get("accepted"), 0)
        return PostResult(
            "done",
            accepted=accepted,
            duplicates=_int(body.get("duplicates"), 0),
            rejected=min(refused, count),
            detail=f"{detail} {_first_errors(errors)}".strip(),
        )
    # 401/403 (key), 404/405 (URL), 5xx, anything else: nothing is lost by waiting
    # (the buffer absorbs it), and the operator sees the reason in the log.
    return PostResult("retry", detail=detail)


@dataclass(frozen=True)
class SenderConfig:
    """How a source batches and buffers (``mutt syslog --help`` documents each)."""

    mode: Mode = "batch"
    batch_size: int = 100
    flush_interval: float = 1.0
    buffer_size: int = 10_000
    max_request_bytes: int = 1_000_000
    min_backoff: float = 0.5
    max_backoff: float = 30.0
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.buffer_size < 1:
            raise ValueError("batch_size and buffer_size must be positive")
        if self.flush_interval <= 0:
            raise ValueError("flush_interval must be positive")


@dataclass
class SenderStats:
    """Counts since start (also exported as Prometheus counters)."""

    queued: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    dropped: int = 0
    lost: int = 0
    retries: int = 0
    last_error: str = ""


class BatchSender:
    """A bounded buffer and the thread that empties it into ingest."""

    def __init__(
        self,
        client: IngestClient,
        config: SenderConfig,
        *,
        name: str = "syslog",
        lane: int | None = None,
    ) -> None:
        self.client = client
        self.config = config
        self.name = name
        self.lane = lane  # one of several senders of a source: the source owns the gauge
        self.mode: Mode = config.mode
        self.stats = SenderStats()
        self._items: deque[tuple[float, bytes]] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._deadline: float | None = None
        thread_name = f"{name}-sender" if lane is None else f"{name}-sender-{lane}"
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)
        self._drop_log = _RateLimitedLog(10.0)
        self._failing_since: float | None = None

    # -- producer side ------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def offer(self, body: bytes) -> bool:
        """Queue one encoded event; ``False`` (counted as dropped) when the buffer is full."""
        with self._cond:
            if self._stopping or len(self._items) >= self.config.buffer_size:
                self.stats.dropped += 1
                SOURCE_EVENTS.labels(self.name, "dropped").inc()
                pending = len(self._items)
                dropped = self.stats.dropped
            else:
                self._items.append((time.monotonic(), body))
                self.stats.queued += 1
                self._gauge()
                size = len(self._items)
                if size == 1 or size >= self.config.batch_size or self.mode == "single":
                    self._cond.notify_all()  # first event starts the flush clock; full batch goes
                return True
        self._drop_log.warn(
            "%s buffer full (%d events waiting for ingest): dropped an event, %d dropped so far",
            self.name,
            pending,
            dropped,
        )
        return False

    def _gauge(self) -> None:
        if self.lane is None:
            SOURCE_BUFFERED.labels(self.name).set(len(self._items))

    def wait_room(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for room; whether ``offer`` would accept now."""
        with self._cond:
            if not self._stopping and len(self._items) >= self.config.buffer_size:
                self._cond.wait(timeout)
            return not self._stopping and len(self._items) < self.config.buffer_size

    @property
    def stopping(self) -> bool:
        """``close`` has begun: nothing more is accepted."""
        return self._stopping

    def has_room(self) -> bool:
        """Whether ``offer`` would accept now (TCP readers wait for this instead of dropping)."""
        with self._cond:
            return not self._stopping and len(self._items) < self.config.buffer_size

    def pending(self) -> int:
        with self._cond:
            return len(self._items)

    def alive(self) -> bool:
        return self._thread.is_alive()

    def readiness(self) -> dict[str, str]:
        """``/readyz``: whether ingest takes what this source sends."""
        if self._failing_since is None:
            return {"ingest": "ok"}
        return {
            "ingest": f"failing since {time.monotonic() - self._failing_since:.0f}s: "
            f"{self.stats.last_error}"
        }

    def close(self, grace: float) -> SenderStats:
        """Send what is buffered for up to ``grace`` seconds; count the rest as lost."""
        with self._cond:
            self._stopping = True
            self._deadline = time.monotonic() + max(0.0, grace)
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(grace + self.client.timeout + 1.0)
        with self._cond:
            lost = len(self._items)
            self._items.clear()
            self._gauge()
        if lost:
            self.stats.lost += lost
            SOURCE_EVENTS.labels(self.name, "lost").inc(lost)
            log.error(
                "%s: %d events were still waiting for ingest after the %.0fs grace period: lost",
                self.name,
                lost,
                grace,
            )
        return self.stats

    # -- the sender thread --------------------------------------------------

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            try:
                self._deliver(batch)
            except Exception:  # a bug must not silently stop delivery: log, back off, go on
                log.exception("%s sender: unexpected error", self.name)
                self._sleep(self.config.max_backoff)

    def _next_batch(self) -> list[bytes] | None:
        """The oldest events once a batch is full or the oldest has waited a flush interval."""
        cfg = self.config
        with self._cond:
            while True:
                now = time.monotonic()
                if self._stopping and (not self._items or self._past_deadline(now)):
                    return None
                if self._items:
                    waited = now - self._items[0][0]
                    if (
                        self._stopping
                        or self.mode == "single"
                        or len(self._items) >= cfg.batch_size
                        or waited >= cfg.flush_interval
                    ):
                        return self._peek()
                    self._cond.wait(cfg.flush_interval - waited)
                else:
                    self._cond.wait()

    def _peek(self) -> list[bytes]:
        """Up to a batch of the oldest events within the request size (they stay queued)."""
        if self.mode == "single":
            return [self._items[0][1]]
        batch: list[bytes] = []
        size = 2
        for _, body in self._items:
            if batch and (
                len(batch) >= self.config.batch_size
                or size + len(body) + 1 > self.config.max_request_bytes
            ):
                break
            batch.append(body)
            size += len(body) + 1
        return batch

    def _deliver(self, batch: list[bytes]) -> None:
        attempt = 0
        while batch:
            timeout = self._request_timeout()
            if timeout is None:
                return  # grace period over; close() counts what is left
            result = self.client.post(batch, self.mode, timeout)
            SOURCE_REQUESTS.labels(self.name, result.kind).inc()
            if result.kind == "done":
                self._settled(len(batch), result, attempt)
                return
            if result.kind == "unsupported" and self.mode == "batch":
                if self.lane is None or self.lane == 0:
                    log.warning(
                        "%s: %s does not take CloudEvents batches (%s); sending one event "
                        "per request, which is much slower (ingest refuses batches when "
                        "MUTT_INGEST_CLOUDEVENTS_BATCH=false; the default takes them)",
                        self.name,
                        self.client.url,
                        result.detail,
                    )
                self.mode = "single"
                batch = batch[:1]
                continue
            if result.kind == "too_large" and len(batch) > 1:
                batch = batch[: len(batch) // 2]
                continue
            if result.kind in ("too_large", "unsupported"):
                log.error("%s: ingest refused an event for good: %s", self.name, result.detail)
                self._settled(len(batch), PostResult("done", rejected=len(batch)), attempt)
                return
            attempt += 1
            self._failed(result, attempt)
            delay = self._backoff(attempt, result.delay)
            if not self._sleep(delay):
                return

    def _settled(self, count: int, result: PostResult, attempts: int) -> None:
        with self._cond:
            for _ in range(min(count, len(self._items))):
                self._items.popleft()
            self._gauge()
            self._cond.notify_all()
        new = result.accepted  # ingest counts published events apart from duplicates
        self.stats.accepted += new
        self.stats.duplicates += result.duplicates
        self.stats.rejected += result.rejected
        SOURCE_EVENTS.labels(self.name, "accepted").inc(new)
        SOURCE_EVENTS.labels(self.name, "duplicate").inc(result.duplicates)
        SOURCE_EVENTS.labels(self.name, "rejected").inc(result.rejected)
        if result.rejected:
            log.error(
                "%s: ingest refused %d of %d events: %s",
                self.name,
                result.rejected,
                count,
                result.detail,
            )
        if self._failing_since is not None:
            log.info(
                "%s: ingest accepts events again (after %d failed attempts, %.1fs)",
                self.name,
                attempts,
                time.monotonic() - self._failing_since,
            )
            self._failing_since = None

    def _failed(self, result: PostResult, attempt: int) -> None:
        self.stats.retries += 1
        self.stats.last_error = result.detail
        if self._failing_since is None:
            self._failing_since = time.monotonic()
        log.warning(
            "%s: ingest did not take %d buffered events (attempt %d): %s",
            self.name,
            self.pending(),
            attempt,
            result.detail,
        )

    def _backoff(self, attempt: int, asked: float | None) -> float:
        cfg = self.config
        if asked is not None:
            return min(max(asked, 0.0), cfg.max_retry_after)
        ceiling = min(cfg.max_backoff, cfg.min_backoff * 2 ** min(attempt - 1, 16))
        return random.uniform(cfg.min_backoff, max(cfg.min_backoff, ceiling))  # noqa: S311 - jitter

    def _request_timeout(self) -> float | None:
        """The client's timeout, shortened to what is left of the grace period."""
        with self._cond:
            if self._deadline is None:
                return self.client.timeout
            left = self._deadline - time.monotonic()
        return None if left <= 0 else max(0.2, min(self.client.timeout, left))

    def _sleep(self, delay: float) -> bool:
        """Wait ``delay`` (cut short by the end of the grace period); ``False`` if that ended."""
        end = time.monotonic() + delay
        with self._cond:
            while True:
                now = time.monotonic()
                if self._past_deadline(now):
                    return False
                limit = end if self._deadline is None else min(end, self._deadline)
                if now >= limit:
                    return not self._past_deadline(now)
                self._cond.wait(limit - now)

    def _past_deadline(self, now: float) -> bool:
        return self._deadline is not None and now >= self._deadline


class _RateLimitedLog:
    """A warning at most every ``interval`` seconds (drops can come by the thousand)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._last = -float("inf")
        self._lock = threading.Lock()

    def warn(self, fmt: str, *args: object) -> None:
        with self._lock:
            now = time.monotonic()
            if now - self._last < self.interval:
                return
            self._last = now
        log.warning(fmt, *args)


def _json(response: requests.Response) -> dict[str, object]:
    try:
        doc = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _int(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _first_errors(errors: object, limit: int = 3) -> str:
    if not isinstance(errors, list):
        return ""
    shown = [
        f"[{e.get('index')}] {e.get('field')}: {e.get('error')}"
        for e in errors[:limit]
        if isinstance(e, dict)
    ]
    more = f" (+{len(errors) - limit} more)" if len(errors) > limit else ""
    return "; ".join(shown) + more


_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\"()]+)")


def _first_line(exc: Exception) -> str:
    """urllib3's nested messages cut to their cause (``Connection refused``)."""
    text = str(exc)
    cause = _ERRNO.search(text)
    if cause is not None:
        return cause.group(1).strip()
    lines = text.splitlines()
    return lines[0][:300] if lines else ""
