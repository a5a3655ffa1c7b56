"""The stream-worker runtime: a consumer-group loop around one function's handler.

Each turn takes a batch (new entries, or entries reclaimed from dead
consumers, or this consumer's own entries due for a retry), calls the handler
once for the whole batch, and settles the batch in one ``MULTI/EXEC``:
replies published and entries acknowledged together. ``stop()`` (SIGTERM)
lets the current batch finish and settle before the loop exits.
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
from shared.broker.schedule import Promoter, now_ms
from shared.broker.streams import Entry, Settlement
from shared.config import Settings
from shared.envelope import FIELD, EnvelopeError, decode, encode
from shared.handler import Handler, Outcome
from shared.metrics import STAGE_BATCH_SECONDS, STAGE_EVENTS, STAGE_RECLAIMED
from shared.redis_client import recover_auth

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


class StreamWorker:
    """Consumes ``stream`` as ``group`` and feeds ``handler``."""

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
        self._promoter = Promoter(r, stream)
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

    def stop(self) -> None:
        """Finish the batch in hand, settle it, then return from ``run``."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self) -> None:
        streams.ensure_group(self.r, self.stream, self.group)
        self._heartbeat.start()
        log.info("worker %s consuming %s as %s", self.consumer, self.stream, self.group)
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
                            streams.ensure_group(self.r, self.stream, self.group)
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
        entries = self._recover() if time.monotonic() >= self._next_recovery else []
        parked, looked = self._promote()
        if not entries:
            block = None if self._stop.is_set() else self.settings.worker_block_ms
            if (parked or not looked) and block is not None:
                block = min(block, 50)  # come back soon to promote what falls due
            entries = streams.read_batch(
                self.r,
                self.stream,
                self.group,
                self.consumer,
                self.settings.worker_batch_size,
                block,
            )
        if entries:
            self.process(entries)
        return len(entries)

    def _promote(self) -> tuple[int, bool]:
        """Promote due parked entries, at most every ``PROMOTE_INTERVAL`` seconds.

        Returns the entries still parked (as of the last look) and whether it
        looked now. Under load a turn takes a few milliseconds; one script
        call per turn was a round trip per batch for every stage. A turn that
        did not look never blocks long (the caller caps its wait at 50 ms), so
        an entry parked meanwhile is promoted as soon as before.
        """
        now = time.monotonic()
        if now < self._next_promote:
            return self._parked, False
        _, self._parked = self._promoter.promote()
        self._next_promote = now + PROMOTE_INTERVAL
        return self._parked, True

    def _recover(self) -> list[Entry]:
        """Entries of dead consumers, then our own entries due for a retry."""
        self._next_recovery = time.monotonic() + min(
            self.settings.retry_delay_seconds, self.settings.claim_min_idle_seconds
        )
        count = self.settings.worker_batch_size
        entries = self.reclaim_dead(count)
        if len(entries) < count:
            idle = int(self.settings.retry_delay_seconds * 1000)
            own = streams.pending_of(
                self.r, self.stream, self.group, self.consumer, idle, count - len(entries)
            )
            entries += streams.claim(self.r, self.stream, self.group, self.consumer, idle, own)
        return entries

    def reclaim_dead(self, count: int) -> list[Entry]:
        """Claim entries pending on consumers without a heartbeat, idle long enough."""
        others = [
            c
            for c in streams.consumers(self.r, self.stream, self.group)
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
                self.r, self.stream, self.group, name, idle, count - len(claimed)
            )
            got = streams.claim(self.r, self.stream, self.group, self.consumer, idle, pending)
            if got:
                log.warning("reclaimed %d entries from dead consumer %s", len(got), name)
            claimed += got
            self._forget(name)  # once it has nothing pending, a dead consumer is removed
        self.stats.reclaimed += len(claimed)
        if claimed:
            STAGE_RECLAIMED.labels(self.group).inc(len(claimed))
        return claimed

    def _forget(self, name: str) -> None:
        """Remove a dead consumer with nothing pending, so XINFO stays short."""
        try:
            if not streams.pending_of(self.r, self.stream, self.group, name, 0, 1):
                self.r.xgroup_delconsumer(self.stream, self.group, name)
        except redis.ResponseError:
            pass

    def process(self, entries: list[Entry]) -> None:
        """Decode, handle, settle: the whole batch in one transaction."""
        started = time.perf_counter()
        before = (self.stats.acked, self.stats.dead_lettered, self.stats.retried)
        self._process(entries)
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

    def _process(self, entries: list[Entry]) -> None:
        plan = Settlement()
        events: list[CloudEvent] = []
        held: list[Entry] = []
        raw = getattr(self.handler, "handle_entries", None)  # the relay: entries unparsed
        for entry in entries:
            if entry.total_deliveries > self.settings.max_deliveries:
                self._dead_letter(
                    plan, entry, f"delivered {entry.total_deliveries} times without success"
                )
                continue
            if raw is not None:
                held.append(entry)
                continue
            try:
                events.append(decode(entry.fields.get(FIELD, b"")))
                held.append(entry)
            except EnvelopeError as exc:
                self._dead_letter(plan, entry, f"undecodable entry: {exc}")
        outcomes = self._handle(events) if raw is None else self._handle_raw(raw, held)
        for entry, outcome in zip(held, outcomes, strict=True):
            if outcome.status == "ok":
                self._publish_replies(plan, outcome.replies)
                for event, delay in outcome.later:
                    plan.defer(
                        self.stream, uuid.uuid4().hex, encode(event), now_ms() + int(delay * 1000)
                    )
                    self.stats.deferred += 1
                for event, why in outcome.dead:
                    self._dead_letter(
                        plan,
                        Entry(entry.id, {FIELD: encode(event)}, entry.deliveries),
                        why,
                        ack=False,
                    )
                plan.ack(entry.id)
                self.stats.acked += 1
            elif outcome.status == "reject":
                self._dead_letter(plan, entry, outcome.reason)
            else:
                self.stats.retried += 1
                log.warning("entry %s will be retried: %s", entry.id, outcome.reason)
        streams.settle(self.r, self.stream, self.group, plan)
        self.stats.batches += 1
        if self._on_batch:
            self._on_batch(self.stats)

    def _publish_replies(self, plan: Settlement, replies: Sequence[CloudEvent]) -> None:
        for reply in replies:
            target = self.keys.stream_for(reply["type"])
            maxlen = DELIVERED_MAXLEN if target == self.keys.delivered else None
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
        self, plan: Settlement, entry: Entry, reason: str, *, ack: bool = True
    ) -> None:
        fields = streams.dead_letter_fields(
            entry, stage=self.group, origin=self.stream, reason=reason
        )
        plan.add(self.keys.dlq(self.group), fields)
        if ack:
            plan.ack(entry.id)
        self.stats.dead_lettered += 1
        log.error("entry %s dead-lettered: %s", entry.id, reason)
