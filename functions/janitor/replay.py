"""The janitor's ``replay`` task: dead letters an outage left behind go back to forward.

Forward never dead-letters for an outage any more (it retries until the sink
answers), but a DLQ written by an earlier version holds alerts that "gave up
after N attempts" at a sink that was down. Once that sink's breaker is not
open, they are moved back to the alerts stream with the one race-free replay
(``shared.broker.dlq``), and forward delivers them, paced by the sink's rate
limit and guarded by its breaker. The janitor builds no sink and imports
nothing of forward: the breaker's state is read from Redis. Permanent
failures (a vendor's 4xx) stay in the DLQ for an operator (``mutt dlq``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import redis

from shared.broker.dlq import DeadLetter, Selection, iter_dlq, replay
from shared.broker.keys import Keys

TRANSIENT_PREFIX = "gave up after"
SINK_EXTENSION = "muttsinks"  # the sink a forward dead letter failed at


@dataclass
class ReplayReport:
    replayed: dict[str, int] = field(default_factory=dict)
    waiting: dict[str, int] = field(default_factory=dict)  # breaker still open
    permanent: int = 0


def run(r: redis.Redis, keys: Keys, limit: int = 1000) -> ReplayReport:
    """Replay up to ``limit`` transient forward dead letters whose sink's breaker is not open."""
    report = ReplayReport()
    chosen: list[str] = []
    per_sink: dict[str, int] = {}
    open_now: dict[str, bool] = {}
    for entry in iter_dlq(r, keys, "forward"):
        if len(chosen) >= limit:
            break
        sink = _sink(entry)
        if not entry.reason.startswith(TRANSIENT_PREFIX) or sink is None:
            report.permanent += 1
            continue
        if sink not in open_now:
            state = r.hget(keys.breaker(sink), "state")
            open_now[sink] = state in (b"open", "open")
        if open_now[sink]:
            report.waiting[sink] = report.waiting.get(sink, 0) + 1
            continue
        chosen.append(entry.ref)
        per_sink[sink] = per_sink.get(sink, 0) + 1
    if chosen:
        done = replay(r, keys, Selection(stages=("forward",), ids=tuple(chosen)))
        if done.replayed == len(chosen):
            report.replayed = per_sink
        else:  # some were replayed or purged by someone else meanwhile
            report.replayed = {"(all sinks)": done.replayed}
    return report


def _sink(entry: DeadLetter) -> str | None:
    ce = entry.cloudevent()
    value = ce.get(SINK_EXTENSION) if ce else None
    return str(value) if value else None
