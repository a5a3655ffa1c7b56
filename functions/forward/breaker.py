"""A circuit breaker per sink, shared by all forward instances (Redis + Lua).

Closed: everything goes through; ``threshold`` consecutive failures open it.
Open: nothing goes through for ``cooldown``; alerts are parked, not failed,
so an outage burns no retries. Half-open: exactly one probe at a time; its
success closes the breaker, its failure re-opens it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

import redis

BREAKER_LUA = resources.files("functions.forward").joinpath("breaker.lua").read_text()
_SCRIPT = (
    BREAKER_LUA
    + """
local now = breaker_now()
if ARGV[1] == "admit" then
  local admitted, state, retry_after = breaker_admit(
    KEYS[1], now, tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]))
  return {admitted, state, retry_after}
end
local state, failures = breaker_record(KEYS[1], now, ARGV[2], tonumber(ARGV[3]))
return {state, failures}
"""
)

STATES = {"closed": 0, "half_open": 1, "open": 2}


@dataclass(frozen=True)
class Admission:
    """How many deliveries may go now, and when to ask again."""

    admitted: int
    state: str
    retry_after_ms: int


@dataclass(frozen=True)
class BreakerSettings:
    threshold: int = 5
    cooldown_ms: int = 30_000
    probe_timeout_ms: int = 30_000


class CircuitBreaker:
    """The breaker of one sink, stored in the hash ``key``."""

    def __init__(self, r: redis.Redis, key: str, settings: BreakerSettings) -> None:
        self.key = key
        self.settings = settings
        self._r = r
        self._script = r.register_script(_SCRIPT)

    def admit(self, wanted: int) -> Admission:
        """Up to ``wanted`` when closed, one probe when half-open, none when open."""
        s = self.settings
        admitted, state, retry_after = self._script(
            keys=[self.key], args=["admit", wanted, s.cooldown_ms, s.probe_timeout_ms]
        )
        return Admission(int(admitted), _text(state), int(retry_after))

    def record(self, successes: Sequence[bool]) -> str:
        """Report results in the order they happened; returns the new state."""
        if not successes:
            return self.state()
        results = "".join("S" if ok else "F" for ok in successes)
        state, _failures = self._script(
            keys=[self.key], args=["record", results, self.settings.threshold]
        )
        return _text(state)

    def state(self) -> str:
        raw = self._r.hget(self.key, "state")
        return _text(raw) if raw else "closed"


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
