"""Failed authentications per client address, in process: the 429 of a bad-key flood.

A client that fails ``limit`` times within a window is answered 429 with
``Retry-After`` until its window ends, before its key is even compared, so a
flood of bad keys costs a dictionary lookup per request and never reaches
Redis (a shared limiter there would make every bad request a round trip).

Windows are fixed and start at an address's first failure. The table is a
``cachetools.TTLCache``: an entry expires with its window, and the table
holds at most ``max_clients`` addresses (the least recently used goes
first), so no stream of addresses can grow memory without bound. Each
process counts on its own: with N processes an address gets up to N x limit
tries per window, which is still a handful for a key of 128 random bits.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from cachetools import TTLCache

MAX_CLIENTS = 10_000


class _Window:
    """One address's failures in its current window (mutated in place, so the
    cache entry keeps the expiry it got when the window opened)."""

    __slots__ = ("ends", "failures")

    def __init__(self, ends: float) -> None:
        self.ends = ends
        self.failures = 0


class FailureLimiter:
    """Thread-safe; one per process (gunicorn threads share it)."""

    def __init__(
        self,
        limit: int,
        window_seconds: float,
        max_clients: int = MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window_seconds
        self._clock = clock
        self._windows: TTLCache[str, _Window] = TTLCache(max_clients, window_seconds, timer=clock)
        self._lock = threading.Lock()

    def retry_after(self, address: str) -> int | None:
        """Whole seconds until ``address`` may try again, or ``None`` when it may now."""
        with self._lock:
            window = self._windows.get(address)
            if window is None or window.failures < self.limit:
                return None
            return max(1, math.ceil(window.ends - self._clock()))

    def failed(self, address: str) -> None:
        """Count one failed authentication of ``address``."""
        with self._lock:
            window = self._windows.get(address)
            if window is None:
                window = _Window(self._clock() + self.window)
                self._windows[address] = window
            window.failures += 1

    def __len__(self) -> int:
        with self._lock:
            self._windows.expire()
            return len(self._windows)
