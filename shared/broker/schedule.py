"""Deferred re-delivery: entries parked until a due time, then put back in their stream.

A stage that must wait (rate limit, open circuit breaker, retry backoff)
does not sleep and does not hold the entry: it acknowledges it and parks a
copy here in the same ``MULTI/EXEC`` (see ``Settlement.defer``). The
worker's loop promotes due copies back into the stream with one atomic
script, so nothing blocks the entries behind and nothing is lost.
"""

from __future__ import annotations

import time

import redis

from shared.broker.keys import schedule_keys
from shared.lua import Call, LuaScript, run_all

_PROMOTE = LuaScript.from_files("shared/broker/promote.lua")


def now_ms() -> int:
    return int(time.time() * 1000)


class Promoter:
    """Moves due entries of one stream's schedule back into the stream."""

    def __init__(self, r: redis.Redis, stream: str, batch: int = 1000) -> None:
        self.stream = stream
        self.zset, self.bodies = schedule_keys(stream)
        self.batch = batch
        self._r = r

    def promote(self) -> tuple[int, int]:
        """Move what is due now; return (moved, still scheduled)."""
        moved, left = self.call().run(self._r)
        return int(moved), int(left)

    def call(self) -> Call:
        """The script call ``promote`` makes, to pipeline with others' (``promote_all``)."""
        return Call(_PROMOTE, [self.zset, self.bodies, self.stream], [now_ms(), self.batch])


def promote_all(r: redis.Redis, promoters: list[Promoter]) -> tuple[int, int]:
    """``promote`` of every promoter in one pipelined round trip; the (moved, left) sums.

    Each call touches one stream's keys only, so the pipeline is legal on a
    Cluster (the client sends each node its calls).
    """
    replies = run_all(r, [p.call() for p in promoters])
    return sum(int(m) for m, _ in replies), sum(int(n) for _, n in replies)


def scheduled_count(r: redis.Redis, stream: str) -> int:
    """How many entries of ``stream`` are parked."""
    return int(r.zcard(schedule_keys(stream)[0]))
