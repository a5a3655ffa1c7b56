"""A global rate limit shared by every instance: Redis + one atomic Lua script.

Used by ingest (admission, all or nothing per request) and forward (per sink,
what is available). Limit and window are passed on every call, so a change
in dynamic config applies on the next call with no restart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources

import redis

SLIDING_WINDOW_LUA = resources.files("shared").joinpath("sliding_window.lua").read_text()
_SCRIPT = (
    SLIDING_WINDOW_LUA
    + """
local granted, retry_after = sliding_window(
  KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4] == "1")
return {granted, retry_after}
"""
)


@dataclass(frozen=True)
class Grant:
    """How many permits were granted, and when to come back for the rest."""

    granted: int
    retry_after_ms: int

    @property
    def retry_after_seconds(self) -> int:
        """For a ``Retry-After`` header: whole seconds, at least 1."""
        return max(1, math.ceil(self.retry_after_ms / 1000))


class SlidingWindowLimiter:
    """``limit`` permits per ``window_ms`` across all processes using ``key``."""

    def __init__(self, r: redis.Redis, key: str) -> None:
        self.key = key
        self._script = r.register_script(_SCRIPT)

    def acquire(self, permits: int, limit: int, window_ms: int, *, all_or_nothing: bool) -> Grant:
        """Take up to ``permits`` (exactly ``permits`` or none when ``all_or_nothing``).

        A limit of 0 or less means unlimited and costs no round trip.
        """
        if limit <= 0 or permits <= 0:
            return Grant(max(permits, 0), 0)
        granted, retry_after = self._script(
            keys=[self.key], args=[limit, window_ms, permits, "1" if all_or_nothing else "0"]
        )
        return Grant(int(granted), int(retry_after))
