"""Failed authentication, limited per client: 429 with ``Retry-After`` past the limit.

A guessed key costs the guesser a minute after a few tries. The count is
per process (each instance keeps its own, which bounds the cost of a
guessing attack by the number of instances); ingest keeps its own limiter.
The client is the peer address; behind a local proxy (Knative's
queue-proxy, a reverse proxy on the same host) it is the last address the
proxy appended to ``X-Forwarded-For``, which a client cannot forge.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque

MAX_CLIENTS = 10_000


class FailureLimiter:
    """At most ``limit`` failures per ``window`` seconds per client (``limit`` 0 = off)."""

    def __init__(self, window: float = 60.0) -> None:
        self.window = window
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self._failures.get(client)
        if times is None:
            times = deque()
            self._failures[client] = times
            while len(self._failures) > MAX_CLIENTS:
                self._failures.popitem(last=False)
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def retry_after(self, client: str, limit: int, now: float | None = None) -> int | None:
        """Seconds the client must wait, or ``None`` when it may try."""
        if limit <= 0:
            return None
        now = time.monotonic() if now is None else now
        with self._lock:
            times = self._recent(client, now)
            if len(times) < limit:
                return None
            return max(1, math.ceil(times[-limit] + self.window - now))

    def failed(self, client: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._recent(client, now).append(now)
            self._failures.move_to_end(client)


def client_of(remote_addr: str | None, forwarded_for: str | None) -> str:
    """The client to count failures against (see the module docstring)."""
    peer = remote_addr or "unknown"
    if forwarded_for and (peer.startswith("127.") or peer == "::1"):
        last = forwarded_for.split(",")[-1].strip()
        if last:
            return last
    return peer
