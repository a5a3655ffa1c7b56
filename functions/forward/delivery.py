"""The delivery engine: every alert to every routed sink, effectively once, never dropped.

Per batch and per sink: delivered markers are checked (a redelivered alert
that already succeeded is not sent again), the circuit breaker admits what
may go, the global rate limit grants what may go now, the rest is parked
for later without burning a retry. Sends are classified by the sink:
delivered (marker written, report replied), retry (backoff with jitter,
parked, dead-lettered once the attempts are spent) or permanent (dead-
lettered with the vendor's answer). Nothing here sleeps.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import redis
from cloudevents.http import CloudEvent
from pydantic import ValidationError

from functions.forward.breaker import BreakerSettings, CircuitBreaker
from functions.forward.routing import Router
from functions.forward.sinks.base import SendResult, Sink
from shared.broker.keys import Keys
from shared.dynconfig import DynamicConfig
from shared.envelope import make_event
from shared.failpoints import failpoint
from shared.handler import Outcome
from shared.metrics import (
    BREAKER_STATE,
    BREAKER_VALUES,
    DEFERRALS,
    DELIVERIES,
    DELIVERY_SECONDS,
)
from shared.models import TYPE_ALERT, TYPE_DELIVERED, Alert, Delivery
from shared.ratelimit import SlidingWindowLimiter
from shared.tracing import context_from, span

log = logging.getLogger(__name__)

SOURCE = "/mutt/forward"
EXT_SINKS = "muttsinks"
EXT_ATTEMPT = "muttattempt"
MARKER_TTL_SECONDS = 7 * 86_400
MIN_PARK_SECONDS = 0.05


@dataclass
class Job:
    """One alert for one sink."""

    item: int
    alert: Alert
    sink: str
    attempt: int


@dataclass
class Result:
    """What became of one input alert across its sinks."""

    reports: list[CloudEvent] = field(default_factory=list)
    later: list[tuple[CloudEvent, float]] = field(default_factory=list)
    dead: list[tuple[CloudEvent, str]] = field(default_factory=list)


def backoff_seconds(attempt: int, base_ms: int, max_ms: int) -> float:
    """Exponential backoff with jitter: between half and all of base * 2^(attempt-1)."""
    ceiling = float(min(max_ms, base_ms * 2 ** min(attempt - 1, 30)))
    return ceiling * random.uniform(0.5, 1.0) / 1000  # noqa: S311 - jitter, not crypto


class Deliverer:
    """The forward handler: alerts in, delivery reports out."""

    stage = "forward"

    def __init__(
        self,
        r: redis.Redis,
        keys: Keys,
        sinks: Mapping[str, Sink],
        router: Router,
        dyn: DynamicConfig,
        rate_limits: Mapping[str, int] | None = None,
    ) -> None:
        self.r = r
        self.keys = keys
        self.sinks = sinks
        self.router = router
        self.dyn = dyn
        self.rate_limits = dict(rate_limits or {})
        self._limiters = {n: SlidingWindowLimiter(r, f"{keys.base}:rl:sink:{n}") for n in sinks}

    def breaker(self, sink: str) -> CircuitBreaker:
        settings = BreakerSettings(
            threshold=self.dyn.get("breaker_threshold"),
            cooldown_ms=self.dyn.get("breaker_cooldown_ms"),
            probe_timeout_ms=max(30_000, self.dyn.get("breaker_cooldown_ms")),
        )
        return CircuitBreaker(self.r, f"{self.keys.base}:breaker:{sink}", settings)

    def marker(self, sink: str, alert: Alert) -> str:
        return f"{self.keys.base}:delivered:{sink}:{alert.alert_id}"

    def handle(self, events: Sequence[CloudEvent]) -> list[Outcome]:
        results = [Result() for _ in events]
        rejects: dict[int, str] = {}
        jobs: list[Job] = []
        sources: list[CloudEvent] = list(events)
        for i, ce in enumerate(events):
            try:
                jobs += self._jobs(i, ce)
            except ValueError as exc:
                rejects[i] = str(exc)
        fresh = self._skip_delivered(jobs, results)
        by_sink: dict[str, list[Job]] = {}
        for job in fresh:
            by_sink.setdefault(job.sink, []).append(job)
        for sink, group in by_sink.items():
            self._deliver_group(sink, group, sources, results)
        outcomes = []
        for i, res in enumerate(results):
            if i in rejects:
                outcomes.append(Outcome.reject(rejects[i]))
            else:
                outcomes.append(Outcome.ok(*res.reports, later=res.later, dead=res.dead))
        return outcomes

    def _jobs(self, i: int, ce: CloudEvent) -> list[Job]:
        if ce["type"] != TYPE_ALERT:
            raise ValueError(f"forward takes {TYPE_ALERT}, not {ce['type']}")
        try:
            alert = Alert.model_validate(ce.data)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "data"
            raise ValueError(f"invalid alert: {where}: {err['msg']}") from None
        attempt = _attempt(ce.get(EXT_ATTEMPT))
        named = ce.get(EXT_SINKS)
        targets = [s for s in str(named).split(",") if s] if named else self.router.route(alert)
        return [Job(i, alert, sink, attempt) for sink in targets]

    def _skip_delivered(self, jobs: list[Job], results: list[Result]) -> list[Job]:
        """Drop jobs already delivered, or repeated within the batch (one round trip)."""
        if not jobs:
            return []
        pipe = self.r.pipeline(transaction=False)
        for job in jobs:
            pipe.exists(self.marker(job.sink, job.alert))
        fresh = []
        seen: set[tuple[str, str]] = set()
        for job, done in zip(jobs, pipe.execute(), strict=True):
            key = (job.sink, str(job.alert.alert_id))
            if done or key in seen:  # delivered before, or twice in this batch
                results[job.item].reports.append(self._report(job, "duplicate", 0.0))
            else:
                seen.add(key)
                fresh.append(job)
        return fresh

    def _deliver_group(
        self, sink_name: str, group: list[Job], sources: list[CloudEvent], results: list[Result]
    ) -> None:
        sink = self.sinks.get(sink_name)
        if sink is None:
            for job in group:
                why = f"sink {sink_name!r} is not configured (any more)"
                results[job.item].dead.append((self._copy(sources[job.item], job), why))
            return
        breaker = self.breaker(sink_name)
        admission = breaker.admit(len(group))
        BREAKER_STATE.labels(sink_name).set(BREAKER_VALUES.get(admission.state, 0))
        admitted, blocked = group[: admission.admitted], group[admission.admitted :]
        if blocked:
            DEFERRALS.labels(sink_name, "breaker").inc(len(blocked))
        self._park(blocked, admission.retry_after_ms / 1000, sources, results, same_attempt=True)
        limit = self.rate_limits.get(sink_name, self.dyn.get("forward_rate_limit"))
        grant = self._limiters[sink_name].acquire(
            len(admitted), limit, self.dyn.get("forward_rate_window_ms"), all_or_nothing=False
        )
        go, wait = admitted[: grant.granted], admitted[grant.granted :]
        if wait:
            DEFERRALS.labels(sink_name, "rate_limit").inc(len(wait))
        self._park(wait, grant.retry_after_ms / 1000, sources, results, same_attempt=True)
        outcomes: list[bool] = []
        delivered_markers: list[str] = []
        threshold = self.dyn.get("breaker_threshold")
        consecutive = 0
        for n, job in enumerate(go):
            if consecutive >= threshold:  # the breaker is opening: park, do not hammer
                self._park(go[n:], MIN_PARK_SECONDS, sources, results, same_attempt=True)
                break
            started = time.perf_counter()
            parent = context_from(sources[job.item].get_attributes())
            with span("mutt.forward", context=parent) as current:
                current.set_attribute("mutt.sink", sink_name)
                current.set_attribute("mutt.alert_id", str(job.alert.alert_id))
                result = _safe_send(sink, job.alert)
                current.set_attribute("mutt.outcome", result.outcome)
            latency = time.perf_counter() - started
            DELIVERIES.labels(sink_name, result.outcome).inc()
            DELIVERY_SECONDS.labels(sink_name).observe(latency)
            outcomes.append(result.outcome != "retry")
            consecutive = 0 if result.outcome != "retry" else consecutive + 1
            self._settle_job(job, result, latency, sources, results, delivered_markers)
            failpoint("forward.after_deliver")
        flush = getattr(sink, "flush", None)
        if go and callable(flush):
            flush()
        if delivered_markers:
            pipe = self.r.pipeline(transaction=False)
            for key in delivered_markers:
                pipe.set(key, b"1", ex=MARKER_TTL_SECONDS)
            pipe.execute()
        state = breaker.record(outcomes)
        BREAKER_STATE.labels(sink_name).set(BREAKER_VALUES.get(state, 0))

    def _settle_job(
        self,
        job: Job,
        result: SendResult,
        latency: float,
        sources: list[CloudEvent],
        results: list[Result],
        markers: list[str],
    ) -> None:
        res = results[job.item]
        if result.outcome == "delivered":
            markers.append(self.marker(job.sink, job.alert))
            kind: Literal["delivered", "duplicate"] = (
                "duplicate" if result.duplicate else "delivered"
            )
            res.reports.append(self._report(job, kind, latency))
            return
        detail = f"{job.sink}: {result.detail or result.status}"
        ids = {"event_id": str(job.alert.event_id), "alert_id": str(job.alert.alert_id)}
        if result.outcome == "permanent":
            why = f"permanent failure at {detail}"
            log.warning("alert dead-lettered: %s", why, extra=ids)
            res.dead.append((self._copy(sources[job.item], job), why))
            return
        if job.attempt >= self.dyn.get("forward_max_attempts"):
            why = f"gave up after {job.attempt} attempts at {detail}"
            log.warning("alert dead-lettered: %s", why, extra=ids)
            res.dead.append((self._copy(sources[job.item], job), why))
            return
        log.info("delivery to %s will be retried: %s", job.sink, detail, extra=ids)
        delay = backoff_seconds(
            job.attempt, self.dyn.get("forward_retry_base_ms"), self.dyn.get("forward_retry_max_ms")
        )
        if result.retry_after_seconds:
            delay = max(delay, result.retry_after_seconds)
        DEFERRALS.labels(job.sink, "retry").inc()
        res.later.append((self._copy(sources[job.item], job, job.attempt + 1), delay))

    def _park(
        self,
        jobs: list[Job],
        delay: float,
        sources: list[CloudEvent],
        results: list[Result],
        *,
        same_attempt: bool,
    ) -> None:
        """Waiting for capacity is not a failed attempt: the attempt number stays."""
        for job in jobs:
            attempt = job.attempt if same_attempt else job.attempt + 1
            copy = self._copy(sources[job.item], job, attempt)
            results[job.item].later.append((copy, max(delay, MIN_PARK_SECONDS)))

    def _copy(self, ce: CloudEvent, job: Job, attempt: int | None = None) -> CloudEvent:
        """The alert again, aimed at one sink, with its attempt number."""
        attrs = dict(ce.get_attributes())
        attrs[EXT_SINKS] = job.sink
        attrs[EXT_ATTEMPT] = str(attempt if attempt is not None else job.attempt)
        return CloudEvent(attrs, ce.data)

    def _report(
        self, job: Job, outcome: Literal["delivered", "duplicate"], latency: float
    ) -> CloudEvent:
        report = Delivery(
            alert_id=job.alert.alert_id,
            sink=job.sink,
            outcome=outcome,
            attempts=job.attempt,
            latency_seconds=latency,
        )
        return make_event(TYPE_DELIVERED, SOURCE, report, id=f"{job.alert.alert_id}:{job.sink}")


def _attempt(raw: object) -> int:
    try:
        return max(1, int(str(raw))) if raw is not None else 1
    except ValueError:
        return 1


def _safe_send(sink: Sink, alert: Alert) -> SendResult:
    """A sink bug must become a retry, not a crashed batch."""
    try:
        return sink.send(alert)
    except Exception as exc:
        return SendResult("retry", detail=f"sink raised {type(exc).__name__}: {exc}")
