"""The stream-worker runtime: a consumer-group loop around one function's handler.

Each turn takes a batch (new entries, or entries reclaimed from dead
consumers, or this consumer's own entries due for a retry), calls the handler
once for the whole batch, and settles the batch in one ``MULTI/EXEC``:
replies published and entries acknowledged together. ``stop()`` (SIGTERM)
lets the current batch finish and settle before the loop exits.

With stream partitions (``MUTT_PARTITIONS``) one worker consumes its stage's
stream in every partition, a batch at a time from one partition, so a
batch's replies go to that partition's next stream in the same ``MULTI``
(one hash tag, one slot). Partitions take turns: the one after the last
served is tried first, so a busy partition cannot starve a quiet one. On one
Redis a single ``XREADGROUP`` reads (and blocks on) every partition at once;
on a Redis Cluster the partitions are in different slots, so each is read
on its own, round-robin, and an idle worker blocks on one partition at a
time for ``CLUSTER_BLOCK_MS``, which bounds how long an entry arriving in
another waits. One partition (the default) is read exactly as before.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import redis
from cloudevents.http import CloudEvent

from shared.broker import streams
from shared.broker.heartbeat import Heartbeat, alive_consumers
from shared.broker.keys import DELIVERED_MAXLEN, Keys
from shared.broker.schedule import Promoter, now_ms, promote_all
from shared.broker.stages import inputs
from shared.broker.streams import Entry, Settlement
from shared.config import Settings
from shared.envelope import FIELD, EnvelopeError, decode, encode
from shared.handler import Handler, Outcome
from shared.metrics import STAGE_BATCH_SECONDS, STAGE_EVENTS, STAGE_RECLAIMED
from shared.redis_client import is_cluster, recover_auth

log = logging.getLogger(__name__)


def consumer_name(stage: str) -> str:
    """Unique per process: ``<stage>-<host>-<pid>-<random>``."""
    host = socket.gethostname().split(".")[0][:40]
    return f"{stage}-{host}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass
class WorkerStats:
    """Counters a test or a status page can read."""

    batches: int = 0
    acked: int = 0
    dead_lettered: int = 0
    retried: int = 0
    reclaimed: int = 0
    deferred: int = 0


PROMOTE_INTERVAL = 0.02  # seconds between two looks at the parked entries
CLUSTER_BLOCK_MS = 50  # an idle worker's wait on one partition of several, on a Cluster


@dataclass(frozen=True)
class Partition:
    """One stream the worker consumes, with the keys of its partition and its parked entries."""

    stream: str
    keys: Keys
    promoter: Promoter


Batch = tuple[Partition, list[Entry]]


class StreamWorker:
    """Consumes ``stream`` as ``group`` and feeds ``handler``.

    ``stream`` is the group's input in ``keys``' partition; when ``keys``
    counts several partitions, the worker consumes the group's input in
    every one of them.
    """

    def __init__(
        self,
        r: redis.Redis,
        keys: Keys,
        settings: Settings,
        handler: Handler,
        stream: str,
        group: str,
        consumer: str | None = None,
        on_batch: Callable[[WorkerStats], None] | None = None,
    ) -> None:
        self.r = r
        self.keys = keys
        self.settings = settings
        self.handler = handler
        self.stream = stream
        self.group = group
        self.consumer = consumer or consumer_name(group)
        self.stats = WorkerStats()
        self._stop = threading.Event()
        self._on_batch = on_batch
        self._next_recovery = 0.0
        self._last_turn = time.monotonic()
        self.partitions = self._partitions(r, keys, stream, group)
        self._cluster = is_cluster(r)
        self._cursor = 0
        self._next_promote = 0.0
        self._parked = 0
        self._heartbeat = Heartbeat(
            r,
            keys,
            group,
            self.consumer,
            settings.heartbeat_interval_seconds,
            settings.heartbeat_ttl_seconds,
        )

    @staticmethod
    def _partitions(r: redis.Redis, keys: Keys, stream: str, group: str) -> list[Partition]:
        if keys.partitions == 1:
            return [Partition(stream, keys, Promoter(r, stream))]
        found = inputs(keys, group)
        if found[0][0] != stream:
            raise ValueError(
                f"{stream} is not {group}'s input: with {keys.partitions} partitions a worker"
                f" consumes {found[0][0]} and its partitions"
            )
        return [Partition(s, k, Promoter(r, s)) for s, k in found]

    def _ensure_groups(self) -> None:
        for part in self.partitions:
            streams.ensure_group(self.r, part.stream, self.group)

    def stop(self) -> None:
        """Finish the batch in hand, settle it, then return from ``run``."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self) -> None:
        self._ensure_groups()
        self._heartbeat.start()
        shown = self.stream + (
            f" (+{len(self.partitions) - 1} partitions)" if len(self.partitions) > 1 else ""
        )
        log.info("worker %s consuming %s as %s", self.consumer, shown, self.group)
        failures = 0
        try:
            while not self._stop.is_set():
                try:
                    self.run_once()
                    failures = 0
                except redis.AuthenticationError:
                    if not recover_auth(self.r):  # rotation: try the other password
                        failures += 1
                        self._stop.wait(min(5.0, 0.1 * 2**failures))
                except redis.RedisError as exc:
                    if "NOGROUP" in str(exc):
                        log.warning(
                            "group %s vanished (Redis data lost?); recreating it", self.group
                        )
                        with contextlib.suppress(redis.RedisError):
                            self._ensure_groups()
                        continue
                    failures += 1
                    delay = min(5.0, 0.1 * 2**failures)
                    log.warning("redis error (%s); retrying in %.1fs", exc, delay)
                    self._stop.wait(delay)
        finally:
            self._heartbeat.stop()
            log.info("worker %s stopped: %s", self.consumer, self.stats)

    def alive(self) -> bool:
        """The loop has turned recently (a stuck handler makes this false)."""
        limit = max(60.0, 3 * self.settings.worker_block_ms / 1000)
        return time.monotonic() - self._last_turn < limit

    def run_once(self) -> int:
        """One turn of the loop; returns the number of entries handled."""
        self._last_turn = time.monotonic()
        batches = self._recover() if time.monotonic() >= self._next_recovery else []
        parked, looked = self._promote()
        if not batches:
            block = None if self._stop.is_set() else self.settings.worker_block_ms
            if (parked or not looked) and block is not None:
                block = min(block, 50)  # come back soon to promote what falls due
            batches = self._read(block)
        for part, entries in batches:
            self.process(entries, part)
        return sum(len(entries) for _, entries in batches)

    def _read(self, block: int | None) -> list[Batch]:
        """New entries: of the one partition, or of the next partitions with any, fairly."""
        count, parts = self.settings.worker_batch_size, self.partitions
        if len(parts) == 1:
            read = streams.read_batch(
                self.r, parts[0].stream, self.group, self.consumer, count, block
            )
            return [(parts[0], read)] if read else []
        order = parts[self._cursor :] + parts[: self._cursor]
        if not self._cluster:  # one call reads (and blocks on) all of them
            got = streams.read_many(
                self.r, [p.stream for p in order], self.group, self.consumer, count, block
            )
            self._cursor = (self._cursor + 1) % len(parts)
            return [(p, got[p.stream]) for p in order if p.stream in got]
        for n, part in enumerate(order):
            read = streams.read_batch(self.r, part.stream, self.group, self.consumer, count, None)
            if read:
                self._cursor = (self._cursor + n + 1) % len(parts)
                return [(part, read)]
        self._cursor = (self._cursor + 1) % len(parts)
        if block is None:
            return []
        wait = min(block, CLUSTER_BLOCK_MS)
        read = streams.read_batch(self.r, order[0].stream, self.group, self.consumer, count, wait)
        return [(order[0], read)] if read else []

    def _promote(self) -> tuple[int, bool]:
        """Promote due parked entries, at most every ``PROMOTE_INTERVAL`` seconds.

        Returns the entries still parked (as of the last look) and whether it
        looked now. Under load a turn takes a few milliseconds; one script
        call per turn was a round trip per batch for every stage. A turn that
        did not look never blocks long (the caller caps its wait at 50 ms), so
        an entry parked meanwhile is promoted as soon as before. Every
        partition's parked entries are promoted in one pipelined round trip.
        """
        now = time.monotonic()
        if now < self._next_promote:
            return self._parked, False
        _, self._parked = promote_all(self.r, [p.promoter for p in self.partitions])
        self._next_promote = now + PROMOTE_INTERVAL
        return self._parked, True

    def _recover(self) -> list[Batch]:
        """Entries of dead consumers, then our own entries due for a retry, per partition."""
        self._next_recovery = time.monotonic() + min(
            self.settings.retry_delay_seconds, self.settings.claim_min_idle_seconds
        )
        count = self.settings.worker_batch_size
        batches: list[Batch] = []
        for part in self.partitions:
            entries = self.reclaim_dead(count, part)
            if len(entries) < count:
                idle = int(self.settings.retry_delay_seconds * 1000)
                own = streams.pending_of(
                    self.r, part.stream, self.group, self.consumer, idle, count - len(entries)
                )
                entries += streams.claim(self.r, part.stream, self.group, self.consumer, idle, own)
            if entries:
                batches.append((part, entries))
        return batches

    def reclaim_dead(self, count: int, part: Partition | None = None) -> list[Entry]:
        """Claim entries pending on consumers without a heartbeat, idle long enough."""
        part = part or self.partitions[0]
        others = [
            c
            for c in streams.consumers(self.r, part.stream, self.group)
            if c["name"] != self.consumer and int(str(c["pending"])) > 0
        ]
        if not others:
            return []
        names = [str(c["name"]) for c in others]
        alive = alive_consumers(self.r, self.keys, self.group, names)
        idle = int(self.settings.claim_min_idle_seconds * 1000)
        claimed: list[Entry] = []
        for name in names:
            if name in alive or len(claimed) >= count:
                continue
            pending = streams.pending_of(
                self.r, part.stream, self.group, name, idle, count - len(claimed)
            )
            got = streams.claim(self.r, part.stream, self.group, self.consumer, idle, pending)
            if got:
                log.warning("reclaimed %d entries from dead consumer %s", len(got), name)
            claimed += got
            self._forget(part.stream, name)  # once it has nothing pending, it is removed
        self.stats.reclaimed += len(claimed)
        if claimed:
            STAGE_RECLAIMED.labels(self.group).inc(len(claimed))
        return claimed

    def _forget(self, stream: str, name: str) -> None:
        """Remove a dead consumer with nothing pending, so XINFO stays short."""
        try:
            if not streams.pending_of(self.r, stream, self.group, name, 0, 1):
                self.r.xgroup_delconsumer(stream, self.group, name)
        except redis.ResponseError:
            pass

    def process(self, entries: list[Entry], part: Partition | None = None) -> None:
        """Decode, handle, settle: the whole batch (of one partition) in one transaction."""
        started = time.perf_counter()
        before = (self.stats.acked, self.stats.dead_lettered, self.stats.retried)
        self._process(entries, part or self.partitions[0])
        acked, dead, retried = (
            now - then
            for now, then in zip(
                (self.stats.acked, self.stats.dead_lettered, self.stats.retried),
                before,
                strict=True,
            )
        )
        stage = self.group
        STAGE_BATCH_SECONDS.labels(stage).observe(time.perf_counter() - started)
        for outcome, n in (("ok", acked), ("dead_lettered", dead), ("retry", retried)):
            if n:
                STAGE_EVENTS.labels(stage, outcome).inc(n)

    def _process(self, entries: list[Entry], part: Partition) -> None:
        plan = Settlement()
        events: list[CloudEvent] = []
        held: list[Entry] = []
        raw = getattr(self.handler, "handle_entries", None)  # the relay: entries unparsed
        for entry in entries:
            if entry.total_deliveries > self.settings.max_deliveries:
                self._dead_letter(
                    plan, part, entry, f"delivered {entry.total_deliveries} times without success"
                )
                continue
            if raw is not None:
                held.append(entry)
                continue
            try:
                events.append(decode(entry.fields.get(FIELD, b"")))
                held.append(entry)
            except EnvelopeError as exc:
                self._dead_letter(plan, part, entry, f"undecodable entry: {exc}")
        outcomes = self._handle(events) if raw is None else self._handle_raw(raw, held)
        for entry, outcome in zip(held, outcomes, strict=True):
            if outcome.status == "ok":
                self._publish_replies(plan, part.keys, outcome.replies)
                for event, delay in outcome.later:
                    plan.defer(
                        part.stream, uuid.uuid4().hex, encode(event), now_ms() + int(delay * 1000)
                    )
                    self.stats.deferred += 1
                for event, why in outcome.dead:
                    self._dead_letter(
                        plan,
                        part,
                        Entry(entry.id, {FIELD: encode(event)}, entry.deliveries),
                        why,
                        ack=False,
                    )
                plan.ack(entry.id)
                self.stats.acked += 1
            elif outcome.status == "reject":
                self._dead_letter(plan, part, entry, outcome.reason)
            else:
                self.stats.retried += 1
                log.warning("entry %s will be retried: %s", entry.id, outcome.reason)
        streams.settle(self.r, part.stream, self.group, plan)
        self.stats.batches += 1
        if self._on_batch:
            self._on_batch(self.stats)

    def _publish_replies(self, plan: Settlement, keys: Keys, replies: Sequence[CloudEvent]) -> None:
        """Replies go to the next streams of the input's partition: one slot for the MULTI."""
        for reply in replies:
            target = keys.stream_for(reply["type"])
            maxlen = DELIVERED_MAXLEN if target == keys.delivered else None
            plan.add(target, {FIELD: encode(reply)}, maxlen)

    def _handle(self, events: list[CloudEvent]) -> list[Outcome]:
        if not events:
            return []
        try:
            outcomes = self.handler.handle(events)
        except Exception as exc:  # a handler bug or an outage must not kill the worker
            log.exception("handler %s failed on a batch of %d", self.handler.stage, len(events))
            return [Outcome.retry(f"handler error: {exc}")] * len(events)
        if len(outcomes) != len(events):
            stage, got = self.handler.stage, len(outcomes)
            raise RuntimeError(f"handler {stage} returned {got} outcomes for {len(events)} events")
        return outcomes

    def _handle_raw(
        self, raw: Callable[[list[Entry]], list[Outcome]], entries: list[Entry]
    ) -> list[Outcome]:
        if not entries:
            return []
        try:
            outcomes = raw(entries)
        except Exception as exc:  # a relay bug must not kill the loop: retried later
            log.exception("relay %s failed on a batch of %d", self.handler.stage, len(entries))
            return [Outcome.retry(f"relay error: {exc}")] * len(entries)
        if len(outcomes) != len(entries):
            stage, got = self.handler.stage, len(outcomes)
            raise RuntimeError(f"relay {stage} returned {got} outcomes for {len(entries)} entries")
        return outcomes

    def _dead_letter(
        self, plan: Settlement, part: Partition, entry: Entry, reason: str, *, ack: bool = True
    ) -> None:
        fields = streams.dead_letter_fields(
            entry, stage=self.group, origin=part.stream, reason=reason
        )
        plan.add(part.keys.dlq(self.group), fields)
        if ack:
            plan.ack(entry.id)
        self.stats.dead_lettered += 1
        log.error("entry %s dead-lettered: %s", entry.id, reason)
