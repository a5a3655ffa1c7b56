"""The bounded queue between the socket readers and the encoder.

It holds messages as received (bytes, sender, receive time), the cheapest
form to keep, so a burst the encoder and ingest cannot take at once waits in
memory instead of in the kernel's much smaller socket buffer. The bound is
the contract with each transport: UDP datagrams that find it full are
dropped and counted (UDP has no way to say "wait"); a TCP reader checks for
room before it reads and otherwise leaves the bytes in the kernel, which
holds the sender back.
"""

from __future__ import annotations

import threading
from collections import deque

from mutt.sources.udp_receive import Received


class IntakeQueue:
    """A FIFO of received messages with a capacity."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self.dropped = 0
        self._items: deque[Received] = deque()
        self._cond = threading.Condition()

    def __len__(self) -> int:
        return len(self._items)

    def put_datagrams(self, batch: list[Received]) -> int:
        """Queue what fits; return how many were dropped because the queue was full."""
        with self._cond:
            room = self.capacity - len(self._items)
            taken = batch if len(batch) <= room else batch[: max(0, room)]
            self._append(taken)
            dropped = len(batch) - len(taken)
            self.dropped += dropped
            return dropped

    def put_frames(self, frames: list[Received]) -> None:
        """Queue stream frames whatever the room: their reader checked it before reading."""
        with self._cond:
            self._append(frames)

    def _append(self, items: list[Received]) -> None:
        if items:
            self._items.extend(items)
            self._cond.notify()

    def has_room(self) -> bool:
        return len(self._items) < self.capacity

    def take(self, limit: int, timeout: float) -> list[Received]:
        """Up to ``limit`` of the oldest messages; waits up to ``timeout`` for the first."""
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
            items = self._items
            count = min(limit, len(items))
            return [items.popleft() for _ in range(count)]

    def clear(self) -> int:
        """Empty the queue; return how many messages were in it."""
        with self._cond:
            count = len(self._items)
            self._items.clear()
            return count
