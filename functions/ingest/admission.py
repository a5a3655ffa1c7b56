"""Admission: backpressure, the global rate limit, dedup and publishing, together.

Backpressure looks at the event stream's backlog (entries not yet
delivered plus delivered but unacknowledged) and answers 503 above
``ingest_max_pending``; the backlog is sampled at most every 250 ms per
process. Everything else happens in one Lua script per request (see
``admit.lua``): rate limit, dedup marks and XADDs in one atomic round trip,
so a 2xx always means the events are in the stream.
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
from shared.lua import LuaScript
from shared.models import TYPE_ACCEPTED, Event, utcnow
from shared.tracing import current_extensions, span

ADMIT = LuaScript.from_files("shared/sliding_window.lua", "functions/ingest/admit.lua")
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
        try:
            groups: Any = self.r.xinfo_groups(self.keys.events)
        except redis.ResponseError:
            return 0  # no stream yet: nothing waits
        for g in groups:
            name = g["name"].decode() if isinstance(g["name"], bytes) else g["name"]
            if name == GROUP_ALERT:
                lag = g.get("lag")
                if lag is None:  # Redis < 7 (embedded) reports no lag
                    return self._backlog_without_lag(g)
                return int(lag) + int(g["pending"])
        return int(self.r.xlen(self.keys.events))

    def _backlog_without_lag(self, group: dict[str, Any]) -> int:
        """Redis 6.2: consumers caught up = only unacknowledged entries wait; behind = the
        stream length bounds the backlog (it also counts processed history, so this errs
        towards refusing early, never towards accepting more than can be handled)."""
        info: Any = self.r.xinfo_stream(self.keys.events)
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
        keys = [self.keys.ingest_rate_limit, self.keys.events]
        keys += [self.keys.dedup(event_id) for event_id in ids]
        args: list[Any] = [
            self.dyn.get("ingest_rate_limit"),
            self.dyn.get("ingest_rate_window_ms"),
            self.dyn.get("dedup_window_seconds"),
            *bodies,
        ]
        reply = ADMIT.run(self.r, keys, args)
        if int(reply[0]) == 1:
            return Admission(True, retry_after_ms=int(reply[1]))
        return Admission(
            False, published=int(reply[1]), duplicates=tuple(bool(int(x)) for x in reply[2:])
        )
