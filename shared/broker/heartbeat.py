"""Consumer heartbeats: a key with a TTL that a live consumer keeps refreshing.

The first beat is sent before the consumer reads anything (the original sent
it 10 s late, leaving a window where a live pod looked dead).
"""

from __future__ import annotations

import contextlib
import logging
import threading

import redis

from shared.broker.keys import Keys

log = logging.getLogger(__name__)


class Heartbeat:
    """Refreshes ``keys.heartbeat(group, consumer)`` from a daemon thread."""

    def __init__(
        self, r: redis.Redis, keys: Keys, group: str, consumer: str, interval: float, ttl: float
    ) -> None:
        self._r = r
        self._key = keys.heartbeat(group, consumer)
        self._interval = interval
        self._ttl_ms = max(1, int(ttl * 1000))
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name=f"heartbeat-{consumer}", daemon=True
        )

    def start(self) -> None:
        self.beat()
        self._thread.start()

    def beat(self) -> None:
        self._r.set(self._key, b"alive", px=self._ttl_ms)

    def stop(self) -> None:
        """Stop beating and remove the key: a clean exit is not a death."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        with contextlib.suppress(redis.RedisError):
            self._r.delete(self._key)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.beat()
            except redis.RedisError as exc:
                log.warning("heartbeat failed: %s", exc)


def alive_consumers(r: redis.Redis, keys: Keys, group: str, names: list[str]) -> set[str]:
    """Which of ``names`` have a live heartbeat (one round trip)."""
    if not names:
        return set()
    pipe = r.pipeline(transaction=False)
    for n in names:
        pipe.exists(keys.heartbeat(group, n))
    return {n for n, ok in zip(names, pipe.execute(), strict=True) if ok}
