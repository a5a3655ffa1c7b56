"""Remediation: dead letters that failed for transient reasons go back for delivery.

An alert reaches ``dlq:forward`` either permanently refused by its sink
(a 4xx, a sink no longer configured) or after exhausting its retries during
an outage. The second kind is replayed once that sink is healthy again:
its breaker is closed and its health check passes. Replayed alerts re-enter
the alerts stream aimed at that sink only, with a fresh attempt budget, and
the delivery engine paces them at the sink's rate limit. Permanent failures
stay in the DLQ and are reported (``mutt dlq`` shows and replays them by hand).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import redis
from cloudevents.http import CloudEvent

from functions.forward import breaker
from functions.forward.delivery import EXT_ATTEMPT, EXT_SINKS
from functions.forward.sinks.base import Sink
from shared.broker.keys import Keys
from shared.envelope import FIELD, EnvelopeError, decode, encode

TRANSIENT_PREFIX = b"gave up after"


@dataclass
class ReplayReport:
    replayed: dict[str, int] = field(default_factory=dict)
    waiting: dict[str, int] = field(default_factory=dict)  # transient, sink not healthy yet
    permanent: int = 0
    unreadable: int = 0


def _sink_of(ce: CloudEvent) -> str | None:
    value = ce.get(EXT_SINKS)
    return str(value) if value else None


def replay(
    r: redis.Redis, keys: Keys, sinks: Mapping[str, Sink], limit: int = 1000
) -> ReplayReport:
    """Move up to ``limit`` transient dead letters of healthy sinks back to the alerts stream."""
    report = ReplayReport()
    healthy: dict[str, bool] = {}
    rows: Any = r.xrange(keys.dlq("forward"), count=max(limit * 4, 100))
    moved = 0
    for entry_id, fields in rows:
        if moved >= limit:
            break
        if not fields.get(b"dlq_reason", b"").startswith(TRANSIENT_PREFIX):
            report.permanent += 1
            continue
        try:
            ce = decode(fields[FIELD])
        except (KeyError, EnvelopeError):
            report.unreadable += 1
            continue
        sink_name = _sink_of(ce)
        if sink_name is None or sink_name not in sinks:
            report.permanent += 1
            continue
        if sink_name not in healthy:
            closed = breaker.state(r, keys, sink_name) == "closed"
            healthy[sink_name] = closed and _healthy(sinks[sink_name])
        if not healthy[sink_name]:
            report.waiting[sink_name] = report.waiting.get(sink_name, 0) + 1
            continue
        attrs = {k: v for k, v in ce.get_attributes().items() if k != EXT_ATTEMPT}
        fresh = CloudEvent(attrs, ce.data)
        pipe = r.pipeline(transaction=True)
        pipe.xadd(keys.alerts, {FIELD: encode(fresh)})
        pipe.xdel(keys.dlq("forward"), entry_id)
        pipe.execute()
        report.replayed[sink_name] = report.replayed.get(sink_name, 0) + 1
        moved += 1
    return report


def _healthy(sink: Sink) -> bool:
    try:
        return bool(sink.health())
    except Exception:
        return False
