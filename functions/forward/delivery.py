"""The delivery engine: every alert to every routed sink, effectively once, never dropped.

Per batch and per sink: delivered markers are checked (a redelivered alert
that already succeeded is not sent again), the circuit breaker admits what
may go, the global rate limit grants what may go now, the rest is parked
for later without burning a retry. Sends are classified by the sink:
delivered (marker written, report replied), retry (backoff with jitter,
parked, retried until it succeeds: an outage never dead-letters) or
permanent (dead-lettered with the vendor's answer). Nothing here sleeps.

Redis round trips. Each sink's share of a batch costs two calls, and the
second rides with the next sink's first, so a batch makes ``sinks + 1``
round trips here (the worker adds its read, promote and settle):

- *gate* (``breaker.gate``, ``gate.lua``): markers checked, breaker admit,
  rate-limit permits, in one atomic script, right before the sink's sends;
- *finish* (``breaker.finish``, ``finish.lua``): the markers of what the
  sink accepted are set and the breaker records the outcomes, in one atomic
  script, right after the sink's sends -- pipelined with the next sink's
  gate, or sent alone after the last sink.

Both are ``EVALSHA`` in a plain pipeline (``shared.lua``; redis-py's ``Script`` objects
would add a ``SCRIPT EXISTS`` round trip to every pipeline); a ``NOSCRIPT``
answer (Redis restarted) loads the script and runs that call again, which is
safe because a script that did not run changed nothing.

Crash safety (SIGKILL at any point; the entry is acknowledged only by the
worker's settle ``MULTI/EXEC``, after ``handle`` has returned):

1. vendor write, then 2. marker ``SET`` (finish), then 3. ``XACK`` (settle).

A marker is therefore never set later than the acknowledgement of its
entry, and never before the vendor accepted the alert. Killed between 1 and
2, the entry is still pending: another consumer reclaims it and sends it
again, and the vendor's idempotency key (alert id / dedup key; the file sink
recognises it itself) absorbs the repeat -- exactly as before, and the
window is the same as before: a sink's markers are written before the next
sink's sends begin. Killed between 2 and 3, the reclaimed entry finds the
marker and is reported ``duplicate`` without a send. Delivery reports are
replies: the worker publishes them in the settle transaction with the ack,
so they add no round trip and exist exactly when the entry is acknowledged.
(Folding the finish into the settle ``MULTI`` itself would save one more
round trip, but the settle belongs to ``shared/broker``, and the HTTP
function has no settle at all, so the engine keeps writing its markers.)
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import redis
from cloudevents.http import CloudEvent
from pydantic import ValidationError

from functions.forward import breaker
from functions.forward.routing import Router
from functions.forward.sinks.base import SendResult, Sink
from shared.broker.keys import Keys
from shared.dynconfig import DynamicConfig
from shared.envelope import make_event
from shared.failpoints import failpoint
from shared.handler import Outcome
from shared.lua import Call, run_all
from shared.metrics import (
    ALERT_DELIVERY_LATENCY,
    BREAKER_STATE,
    BREAKER_VALUES,
    DEFERRALS,
    DELIVERIES,
    DELIVERY_SECONDS,
    STUCK_DELIVERIES,
)
from shared.models import TYPE_ALERT, TYPE_DELIVERED, Alert, Delivery
from shared.tracing import context_from, span

log = logging.getLogger(__name__)

SOURCE = "/mutt/forward"
EXT_SINKS = "muttsinks"
EXT_ATTEMPT = "muttattempt"
MIN_PARK_SECONDS = 0.05


@dataclass(frozen=True)
class _Call:
    """One script call queued in a pipeline, and whether it is ``sink``'s finish."""

    call: Call
    sink: str
    finish: bool = False


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

    def marker(self, sink: str, alert: Alert) -> str:
        return self.keys.delivered_marker(sink, str(alert.alert_id))

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
        by_sink: dict[str, list[Job]] = {}
        seen: set[tuple[str, str]] = set()
        for job in jobs:
            key = (job.sink, str(job.alert.alert_id))
            if key in seen:  # twice in this batch: the first one stands for both
                results[job.item].reports.append(self._report(job, "duplicate", 0.0))
            else:
                seen.add(key)
                by_sink.setdefault(job.sink, []).append(job)
        finish: _Call | None = None  # the last sink's finish, sent with the next gate
        for sink, group in by_sink.items():
            finish = self._deliver_group(sink, group, sources, results, finish)
        if finish is not None:
            self._run([finish])
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

    def _run(self, calls: Sequence[_Call]) -> list[Any]:
        """The calls in one pipelined round trip; their replies, in order.

        A finish in ``calls`` also updates its sink's breaker gauge.
        """
        replies = run_all(self.r, [queued.call for queued in calls])
        for queued, reply in zip(calls, replies, strict=True):
            if queued.finish:
                state = breaker.finished(reply).state
                if state:
                    BREAKER_STATE.labels(queued.sink).set(BREAKER_VALUES.get(state, 0))
        return replies

    def _limits(self, sink: str) -> breaker.Limits:
        cooldown = self.dyn.get("breaker_cooldown_ms")
        return breaker.Limits(
            cooldown_ms=cooldown,
            probe_timeout_ms=max(30_000, cooldown),
            rate_limit=self.rate_limits.get(sink, self.dyn.get("forward_rate_limit")),
            rate_window_ms=self.dyn.get("forward_rate_window_ms"),
        )

    def _deliver_group(
        self,
        sink_name: str,
        group: list[Job],
        sources: list[CloudEvent],
        results: list[Result],
        finish: _Call | None,
    ) -> _Call | None:
        """Gate and send one sink's jobs; returns this sink's finish, still to run.

        ``finish`` (the previous sink's, if any) runs in the gate's round trip,
        before this sink's first send.
        """
        sink = self.sinks.get(sink_name)
        if sink is None:
            self._unconfigured(sink_name, group, sources, results, finish)
            return None
        go = self._admit(sink_name, group, sources, results, finish)
        return self._send(sink_name, sink, go, sources, results) if go else None

    def _unconfigured(
        self,
        sink_name: str,
        group: list[Job],
        sources: list[CloudEvent],
        results: list[Result],
        finish: _Call | None,
    ) -> None:
        """Jobs for a sink that is gone: duplicates if delivered before, else dead letters."""
        if finish is not None:
            self._run([finish])
        pipe = self.r.pipeline(transaction=False)
        for job in group:
            pipe.exists(self.marker(sink_name, job.alert))
        for job, delivered in zip(group, pipe.execute(), strict=True):
            if delivered:
                results[job.item].reports.append(self._report(job, "duplicate", 0.0))
            else:
                why = f"sink {sink_name!r} is not configured (any more)"
                results[job.item].dead.append((self._copy(sources[job.item], job), why))

    def _admit(
        self,
        sink_name: str,
        group: list[Job],
        sources: list[CloudEvent],
        results: list[Result],
        finish: _Call | None,
    ) -> list[Job]:
        """The jobs that may be sent now; duplicates reported, the rest parked."""
        ids = [str(job.alert.alert_id) for job in group]
        gate = _Call(breaker.gate(self.keys, sink_name, ids, self._limits(sink_name)), sink_name)
        g = breaker.gated(self._run([finish, gate] if finish is not None else [gate])[-1])
        fresh: list[Job] = []
        for job, done in zip(group, g.done, strict=True):
            if done:  # delivered before: a redelivered entry
                results[job.item].reports.append(self._report(job, "duplicate", 0.0))
            else:
                fresh.append(job)
        if not fresh:
            return []
        BREAKER_STATE.labels(sink_name).set(BREAKER_VALUES.get(g.state, 0))
        admitted, blocked = fresh[: g.admitted], fresh[g.admitted :]
        if blocked:
            DEFERRALS.labels(sink_name, "breaker").inc(len(blocked))
        self._park(blocked, g.breaker_wait_ms / 1000, sources, results, same_attempt=True)
        go, wait = admitted[: g.granted], admitted[g.granted :]
        if wait:
            DEFERRALS.labels(sink_name, "rate_limit").inc(len(wait))
        self._park(wait, g.limit_wait_ms / 1000, sources, results, same_attempt=True)
        return go

    def _send(
        self,
        sink_name: str,
        sink: Sink,
        go: list[Job],
        sources: list[CloudEvent],
        results: list[Result],
    ) -> _Call | None:
        """Send in order; returns the finish (markers + breaker record) to run next."""
        outcomes: list[bool] = []
        delivered: list[str] = []
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
            self._settle_job(job, result, latency, sources, results, delivered)
            failpoint("forward.after_deliver")
        flush = getattr(sink, "flush", None)
        if callable(flush):
            flush()
        if not outcomes:
            return None
        finish = breaker.finish(self.keys, sink_name, delivered, outcomes, threshold)
        return _Call(finish, sink_name, finish=True)

    def _settle_job(
        self,
        job: Job,
        result: SendResult,
        latency: float,
        sources: list[CloudEvent],
        results: list[Result],
        delivered: list[str],
    ) -> None:
        res = results[job.item]
        if result.outcome == "delivered":
            delivered.append(str(job.alert.alert_id))
            if not result.duplicate:  # a repeat is not a delivery: its first time was
                since = time.time() - job.alert.event.received_at.timestamp()
                ALERT_DELIVERY_LATENCY.labels(job.sink).observe(max(0.0, since))
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
            # A sink that keeps failing is an outage, not a verdict on the alert:
            # it is never dead-lettered, it waits (at most forward_retry_max_ms
            # between tries) and an operator is told.
            STUCK_DELIVERIES.labels(job.sink).inc()
            log.error(
                "delivery to %s still failing after %d attempts (retried until it succeeds): %s",
                job.sink,
                job.attempt,
                detail,
                extra=ids,
            )
        else:
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
