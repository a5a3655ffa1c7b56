"""Reclaim: work stuck on dead consumers goes back into circulation, continuously.

For each stage, entries pending longer than ``claim_min_idle_seconds`` on a
consumer without a heartbeat are claimed and re-published as fresh entries
(with their delivery count carried in the ``dlv`` field), in the same
transaction that acknowledges the stuck copies; entries already delivered
``max_deliveries`` times go to the stage's DLQ with that history instead.
Live workers also reclaim on their own; the janitor covers stages whose
every worker died (v2.5 recovered only when a process restarted).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import redis

from shared.broker import streams
from shared.broker.heartbeat import alive_consumers
from shared.broker.keys import Keys
from shared.broker.stages import CONSUMING_STAGES, inputs
from shared.broker.streams import CARRIED_DELIVERIES, Settlement, dead_letter_fields

CONSUMER = "janitor"


@dataclass
class ReclaimReport:
    republished: dict[str, int] = field(default_factory=dict)
    dead_lettered: dict[str, int] = field(default_factory=dict)
    dead_consumers: list[str] = field(default_factory=list)


def run(
    r: redis.Redis, keys: Keys, min_idle_seconds: float, max_deliveries: int, batch: int = 500
) -> ReclaimReport:
    report = ReclaimReport()
    idle = int(min_idle_seconds * 1000)
    for group in CONSUMING_STAGES:
        for stream, part in inputs(keys, group):
            _reclaim(r, part, stream, group, idle, max_deliveries, batch, report)
    return report


def _reclaim(
    r: redis.Redis,
    keys: Keys,
    stream: str,
    group: str,
    idle: int,
    max_deliveries: int,
    batch: int,
    report: ReclaimReport,
) -> None:
    """Reclaim one partition's ``stream``: its dead letters go to that partition's DLQ."""
    found = [c for c in streams.consumers(r, stream, group) if c["name"] != CONSUMER]
    names = [str(c["name"]) for c in found if int(str(c["pending"])) > 0]
    alive = alive_consumers(r, keys, group, names)
    for name in names:
        if name in alive:
            continue
        report.dead_consumers.append(f"{group}/{name}")
        while True:
            pending = streams.pending_of(r, stream, group, name, idle, batch)
            entries = streams.claim(r, stream, group, CONSUMER, idle, pending)
            if not entries:
                break
            plan = Settlement()
            for entry in entries:
                # the janitor's own claim is not a delivery to a worker
                total = entry.total_deliveries - 1
                if total > max_deliveries:
                    why = f"reclaimed from dead consumer {name} after {total} deliveries"
                    fields = dead_letter_fields(
                        entry, stage=group, origin=stream, reason=why, deliveries=total
                    )
                    plan.add(keys.dlq(group), fields)
                    report.dead_lettered[group] = report.dead_lettered.get(group, 0) + 1
                else:
                    fields = dict(entry.fields)
                    fields[CARRIED_DELIVERIES] = str(total).encode()
                    plan.add(stream, fields)
                    report.republished[group] = report.republished.get(group, 0) + 1
                plan.ack(entry.id)
            streams.settle(r, stream, group, plan)
            if len(pending) < batch:
                break
        if not streams.pending_of(r, stream, group, name, 0, 1):
            r.xgroup_delconsumer(stream, group, name)
    if any(c["name"] == CONSUMER for c in streams.consumers(r, stream, group)):
        r.xgroup_delconsumer(stream, group, CONSUMER)
