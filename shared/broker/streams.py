"""Redis Streams primitives: publish, read a batch, settle a batch atomically, reclaim.

The invariant every stage relies on: an entry is acknowledged in the same
``MULTI/EXEC`` that publishes its replies (or its dead letter), so a hand-off
is never half done. Until then it stays in the group's pending list, where a
crash leaves it for another consumer to claim.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from shared.broker.keys import schedule_keys
from shared.models import utcnow

Fields = dict[bytes, bytes]


# Deliveries an entry had before it was re-published (by the janitor's reclaim).
CARRIED_DELIVERIES = b"dlv"


@dataclass(frozen=True)
class Entry:
    """One stream entry as a consumer sees it."""

    id: str
    fields: Fields
    deliveries: int = 1

    @property
    def total_deliveries(self) -> int:
        """Deliveries of this entry plus those of the copies it was re-published from."""
        raw = self.fields.get(CARRIED_DELIVERIES, b"0")
        try:
            return self.deliveries + int(raw)
        except ValueError:
            return self.deliveries


@dataclass
class Settlement:
    """What to do with a batch, applied in one transaction by ``settle``."""

    acks: list[str] = field(default_factory=list)
    publish: list[tuple[str, Fields, int | None]] = field(default_factory=list)
    parked: list[tuple[str, str, bytes, int]] = field(default_factory=list)

    def ack(self, entry_id: str) -> None:
        self.acks.append(entry_id)

    def add(self, stream: str, fields: Fields, maxlen: int | None = None) -> None:
        self.publish.append((stream, fields, maxlen))

    def defer(self, stream: str, member: str, body: bytes, due_ms: int) -> None:
        """Park ``body`` until ``due_ms``, then it goes back into ``stream``."""
        self.parked.append((stream, member, body, due_ms))

    def __bool__(self) -> bool:
        return bool(self.acks or self.publish or self.parked)


def _id(raw: object) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def publish(
    r: redis.Redis, stream: str, payloads: Sequence[Fields], maxlen: int | None = None
) -> list[str]:
    """Append entries in one pipelined round trip; return their ids."""
    pipe = r.pipeline(transaction=False)
    for fields in payloads:
        pipe.xadd(stream, fields, maxlen=maxlen, approximate=True)  # type: ignore[arg-type]
    return [_id(x) for x in pipe.execute()]


def ensure_group(r: redis.Redis, stream: str, group: str) -> None:
    """Create the consumer group (and stream) if missing, reading from the start.

    Starting at ``0`` rather than ``$`` means entries published before the
    first consumer ever started are still processed.
    """
    try:
        r.xgroup_create(stream, group, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def read_batch(
    r: redis.Redis, stream: str, group: str, consumer: str, count: int, block_ms: int | None
) -> list[Entry]:
    """Up to ``count`` new entries for this consumer (blocking up to ``block_ms``)."""
    reply: Any = r.xreadgroup(group, consumer, {stream: ">"}, count=count, block=block_ms)
    entries: list[Entry] = []
    for _stream, items in reply or []:
        for entry_id, fields in items:
            if fields is not None:
                entries.append(Entry(_id(entry_id), fields))
    return entries


def read_many(
    r: redis.Redis,
    names: Sequence[str],
    group: str,
    consumer: str,
    count: int,
    block_ms: int | None,
) -> dict[str, list[Entry]]:
    """Up to ``count`` new entries of each stream, in one call (blocking until any has some).

    One Redis only: on a Cluster the streams of different partitions live in
    different slots, and a command's keys must share one.
    """
    reply: Any = r.xreadgroup(
        group, consumer, dict.fromkeys(names, ">"), count=count, block=block_ms
    )
    found: dict[str, list[Entry]] = {}
    for stream, items in reply or []:
        entries = [Entry(_id(eid), fields) for eid, fields in items if fields is not None]
        if entries:
            found[_id(stream)] = entries
    return found


def settle(r: redis.Redis, stream: str, group: str, plan: Settlement) -> None:
    """Publish replies / dead letters and acknowledge, all or nothing."""
    if not plan:
        return
    pipe = r.pipeline(transaction=True)
    for target, fields, maxlen in plan.publish:
        pipe.xadd(target, fields, maxlen=maxlen, approximate=maxlen is not None)  # type: ignore[arg-type]
    for target, member, body, due_ms in plan.parked:
        zset, bodies = schedule_keys(target)
        pipe.hset(bodies, member, body)
        pipe.zadd(zset, {member: due_ms})
    if plan.acks:
        pipe.xack(stream, group, *plan.acks)
    pipe.execute()


def dead_letter_fields(
    entry: Entry, *, stage: str, origin: str, reason: str, deliveries: int | None = None
) -> Fields:
    """The DLQ entry for ``entry``: the original fields plus why and how often."""
    fields = dict(entry.fields)
    fields.update(
        {
            b"dlq_reason": reason[:2000].encode(),
            b"dlq_stage": stage.encode(),
            b"dlq_origin": origin.encode(),
            b"dlq_origin_id": entry.id.encode(),
            b"dlq_deliveries": str(deliveries or entry.total_deliveries).encode(),
            b"dlq_failed_at": utcnow().isoformat().encode(),
        }
    )
    return fields


def pending_of(
    r: redis.Redis, stream: str, group: str, consumer: str, min_idle_ms: int, count: int
) -> list[tuple[str, int]]:
    """Ids and delivery counts pending on ``consumer`` for at least ``min_idle_ms``."""
    rows: Any = r.xpending_range(
        stream, group, "-", "+", count, consumername=consumer, idle=min_idle_ms
    )
    return [(_id(row["message_id"]), int(row["times_delivered"])) for row in rows]


def claim(
    r: redis.Redis,
    stream: str,
    group: str,
    consumer: str,
    min_idle_ms: int,
    pending: Sequence[tuple[str, int]],
) -> list[Entry]:
    """Take over ``pending`` entries that are still idle; return those we now own.

    Each claimed entry's delivery count is one more than before, as Redis
    counts it. An entry another consumer claimed first is not returned (its
    idle time was reset), and entries that were deleted meanwhile are dropped
    from the pending list by Redis 7 itself.
    """
    if not pending:
        return []
    counts = dict(pending)
    claimed: Any = r.xclaim(stream, group, consumer, min_idle_ms, [pid for pid, _ in pending])
    entries: list[Entry] = []
    for entry_id, fields in claimed:
        if fields:
            eid = _id(entry_id)
            entries.append(Entry(eid, fields, counts.get(eid, 0) + 1))
    return entries


def consumers(r: redis.Redis, stream: str, group: str) -> list[dict[str, object]]:
    """``XINFO CONSUMERS`` with names as ``str``; empty when the group is missing."""
    try:
        rows: Any = r.xinfo_consumers(stream, group)
    except redis.ResponseError:
        return []
    return [{**row, "name": _id(row["name"])} for row in rows]


def drained(r: redis.Redis, stream: str, group: str) -> bool:
    """True when the group has read and acknowledged every entry and nothing is parked.

    Entries move between the stream (pending) and the schedule (parked) while
    this looks, so the stream is read before and after the schedule: an entry
    parked after the first read was pending in it, one promoted before the
    second read shows up in it (a new last id).
    """
    before = _group_state(r, stream, group)
    if before is None or r.exists(schedule_keys(stream)[0]):
        return False
    return _group_state(r, stream, group) == before


def _group_state(r: redis.Redis, stream: str, group: str) -> str | None:
    """The stream's last id ("" when there is no stream) once ``group`` has consumed
    everything, else ``None``."""
    try:
        groups: Any = r.xinfo_groups(stream)
        info: Any = r.xinfo_stream(stream)
    except redis.ResponseError:
        return ""
    last = _id(info["last-generated-id"])
    for g in groups:
        if _id(g["name"]) == group:
            done = _id(g["last-delivered-id"]) == last and int(g["pending"]) == 0
            return last if done else None
    return last if int(info["length"]) == 0 else None


def wait_drained(r: redis.Redis, pairs: Iterable[tuple[str, str]], timeout: float) -> bool:
    """Poll until every (stream, group) is drained or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    pairs = list(pairs)
    while time.monotonic() < deadline:
        if all(drained(r, s, g) for s, g in pairs):
            return True
        time.sleep(0.05)
    return False
