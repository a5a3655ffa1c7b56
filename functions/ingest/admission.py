"""Admission: backpressure, the global rate limit, dedup and publishing, together.

Backpressure looks at the event stream's backlog (entries not yet
delivered plus delivered but unacknowledged) and answers 503 above
``ingest_max_pending``; the backlog is sampled at most every 250 ms per
process. Everything else happens in one Lua script per request (see
``admit.lua``): rate limit, dedup marks and XADDs in one atomic round trip,
so a 2xx always means the events are in the stream.

With stream partitions (``MUTT_PARTITIONS``) an event goes to the partition
of its source and host (``Keys.partition_for``), so one device's events
stay in order. The request's permits are taken first (``permits.lua``, in
the limiter's slot), then each partition's events are admitted by one
``admit.lua`` call in that partition's slot, all calls in one pipelined
round trip. A 2xx still means every event is in its stream; a failure
after some partitions were written answers 503, and the client's retry
finds those events' dedup marks (duplicates, not published twice).

``ingest_wait_replicas`` > 0 (a dynamic setting) acknowledges a request only
once that many replicas confirmed its writes (``shared/replication.py``):
a failover can then not lose an acknowledged event, at the price of a
replication round trip per request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis

from shared.broker.keys import GROUP_ALERT, Keys
from shared.dynconfig import DynamicConfig
from shared.envelope import encode_new
from shared.lua import Call, LuaScript
from shared.models import TYPE_ACCEPTED, Event, utcnow
from shared.replication import run_replicated
from shared.tracing import current_extensions, span

ADMIT = LuaScript.from_files("shared/sliding_window.lua", "functions/ingest/admit.lua")
PERMITS = LuaScript.from_files("shared/sliding_window.lua", "functions/ingest/permits.lua")
SOURCE = "/mutt/ingest"
BACKLOG_SAMPLE_SECONDS = 0.25


@dataclass(frozen=True)
class Admission:
    """The answer for one request."""

    refused: bool
    retry_after_ms: int = 0
    published: int = 0
    duplicates: tuple[bool, ...] = ()


class Admitter:
    def __init__(self, r: redis.Redis, keys: Keys, dyn: DynamicConfig) -> None:
        self.r = r
        self.keys = keys
        self.dyn = dyn
        self._backlog = 0
        self._sampled_at = -1e9
        self._lock = threading.Lock()

    def overloaded(self) -> int | None:
        """The backlog when it is above the limit, else ``None``."""
        limit = self.dyn.get("ingest_max_pending")
        backlog = self.backlog()
        return backlog if backlog > limit else None

    def backlog(self) -> int:
        now = time.monotonic()
        if now - self._sampled_at < BACKLOG_SAMPLE_SECONDS:
            return self._backlog
        with self._lock:
            if now - self._sampled_at >= BACKLOG_SAMPLE_SECONDS:
                self._backlog = self._measure()
                self._sampled_at = now
        return self._backlog

    def _measure(self) -> int:
        """The backlog of every partition's event stream together."""
        return sum(self._measure_one(part.events) for part in self.keys.all_partitions())

    def _measure_one(self, stream: str) -> int:
        try:
            groups: Any = self.r.xinfo_groups(stream)
        except redis.ResponseError:
            return 0  # no stream yet: nothing waits
        for g in groups:
            name = g["name"].decode() if isinstance(g["name"], bytes) else g["name"]
            if name == GROUP_ALERT:
                lag = g.get("lag")
                if lag is None:  # Redis < 7 (embedded) reports no lag
                    return self._backlog_without_lag(stream, g)
                return int(lag) + int(g["pending"])
        return int(self.r.xlen(stream))

    def _backlog_without_lag(self, stream: str, group: dict[str, Any]) -> int:
        """Redis 6.2: consumers caught up = only unacknowledged entries wait; behind = the
        stream length bounds the backlog (it also counts processed history, so this errs
        towards refusing early, never towards accepting more than can be handled)."""
        info: Any = self.r.xinfo_stream(stream)
        last = info["last-generated-id"]
        if group["last-delivered-id"] == last:
            return int(group["pending"])
        return int(info["length"])

    def admit(self, events: Sequence[Event]) -> Admission:
        """Rate-limit, dedup and publish ``events`` (all refused, or all handled)."""
        if not events:
            return Admission(False)
        bodies = []
        ids = [str(e.event_id) for e in events]
        now = utcnow().isoformat()  # one publication time for the request
        for e, event_id in zip(events, ids, strict=True):
            with span("mutt.ingest.event", attributes={"mutt.event_id": event_id}):
                bodies.append(
                    encode_new(
                        TYPE_ACCEPTED, SOURCE, e, id=event_id, time=now, **current_extensions()
                    )
                )
        limit = self.dyn.get("ingest_rate_limit")
        window_ms = self.dyn.get("ingest_rate_window_ms")
        ttl = self.dyn.get("dedup_window_seconds")
        if self.keys.partitions == 1:
            (reply,) = self._run(
                [
                    Call(
                        ADMIT,
                        [self.keys.events, *map(self.keys.dedup, ids), self.keys.ingest_rate_limit],
                        [limit, window_ms, ttl, *bodies],
                    )
                ]
            )
            if int(reply[0]) == 1:
                return Admission(True, retry_after_ms=int(reply[1]))
            return Admission(
                False, published=int(reply[1]), duplicates=tuple(bool(int(x)) for x in reply[2:])
            )
        return self._admit_partitioned(events, ids, bodies, limit, window_ms, ttl)

    def _run(self, calls: list[Call]) -> list[Any]:
        """The admission scripts, confirmed by ``ingest_wait_replicas`` replicas if set."""
        replicas = self.dyn.get("ingest_wait_replicas")
        return run_replicated(self.r, calls, replicas, self.dyn.get("ingest_wait_timeout_ms"))

    def _admit_partitioned(
        self,
        events: Sequence[Event],
        ids: list[str],
        bodies: list[bytes],
        limit: int,
        window_ms: int,
        ttl: int,
    ) -> Admission:
        """Permits for the request, then one ``admit.lua`` call per partition it touches."""
        if limit > 0:
            granted, retry_after = PERMITS.run(
                self.r, [self.keys.ingest_rate_limit], [limit, window_ms, len(events)]
            )
            if int(granted) == 0:
                return Admission(True, retry_after_ms=int(retry_after))
        placed: dict[int, list[int]] = {}
        for n, e in enumerate(events):
            placed.setdefault(self.keys.partition_for(e.source, e.hostname).index, []).append(n)
        calls: list[Call] = []
        for index, members in placed.items():
            part = self.keys.partition(index)
            args: list[int | bytes] = [0, window_ms, ttl, *(bodies[n] for n in members)]
            calls.append(Call(ADMIT, [part.events, *(part.dedup(ids[n]) for n in members)], args))
        duplicates = [False] * len(events)
        published = 0
        for members, reply in zip(placed.values(), self._run(calls), strict=True):
            published += int(reply[1])
            for n, flag in zip(members, reply[2:], strict=True):
                duplicates[n] = bool(int(flag))
        return Admission(False, published=published, duplicates=tuple(duplicates))
