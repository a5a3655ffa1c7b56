"""Received messages → events → ingest, off the readers' threads, in per-device order.

The readers only queue what they read (``IntakeQueue``). One encoder thread
turns each message into an encoded CloudEvent and hands it to one of several
senders ("lanes", each a ``BatchSender`` with its own thread and connection),
chosen by the event's hostname. Several lanes keep several requests in
flight, so every ingest worker has work; choosing the lane by hostname keeps
each device's events in the order they were received (a link's "down" never
overtakes its "up"), which one request at a time would also do, but at the
rate of one ingest worker.

Backpressure runs back to front: a lane whose buffer is full makes the
encoder wait, the intake queue fills, and then UDP datagrams are dropped and
counted while TCP connections stop being read. Nothing accepted into the
queue is dropped for an ingest failure: the lanes retry until ingest takes
their events, and only what is still waiting when the grace period of a stop
runs out is counted as lost.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from mutt.sources.intake_queue import IntakeQueue
from mutt.sources.sender import (
    SOURCE_BUFFERED,
    SOURCE_EVENTS,
    BatchSender,
    IngestClient,
    SenderConfig,
    SenderStats,
)
from mutt.sources.udp_receive import Received

log = logging.getLogger(__name__)

ENCODE_CHUNK = 256
ROOM_WAIT_SECONDS = 0.2

# a received message → (the hostname that picks its lane, the encoded event), or None (blank)
Encoder = Callable[[Received], tuple[str, bytes] | None]


class SourcePipeline:
    """The intake queue, the encoder thread and the lanes of one source."""

    def __init__(
        self,
        encode: Encoder,
        client: IngestClient,
        config: SenderConfig,
        *,
        lanes: int = 4,
        name: str = "syslog",
    ) -> None:
        if lanes < 1:
            raise ValueError("lanes must be at least 1")
        self.name = name
        self.client = client
        self.encode = encode
        self.queue = IntakeQueue(config.buffer_size)
        # a lane holds the batch in flight and the next one: the intake queue is the buffer
        lane_config = dataclasses.replace(config, buffer_size=2 * config.batch_size)
        self.lanes = [BatchSender(client, lane_config, name=name, lane=i) for i in range(lanes)]
        self.received = 0
        self.failed = 0  # messages the encoder could not turn into an event (a bug: logged)
        self._lost = 0
        self._in_hand = 0  # taken from the queue by the encoder, not yet in a lane
        self._closing = False
        self._deadline: float | None = None
        self._drop_log_at = -float("inf")
        self._encoder = threading.Thread(target=self._run, name=f"{name}-encoder", daemon=True)

    # -- readers' side ------------------------------------------------------

    def start(self) -> None:
        for lane in self.lanes:
            lane.start()
        self._encoder.start()

    def put_datagrams(self, batch: list[Received]) -> None:
        """From the UDP reader: queue what fits, count (and log, sparingly) the rest."""
        dropped = self.queue.put_datagrams(batch)
        if dropped:
            SOURCE_EVENTS.labels(self.name, "dropped").inc(dropped)
            now = time.monotonic()
            if now - self._drop_log_at >= 10.0:
                self._drop_log_at = now
                log.warning(
                    "%s intake queue full (%d messages waiting for ingest): dropped %d UDP "
                    "datagrams, %d so far",
                    self.name,
                    len(self.queue),
                    dropped,
                    self.queue.dropped,
                )

    def put_frames(self, frames: list[Received]) -> None:
        """From a TCP reader that saw ``has_room``."""
        self.queue.put_frames(frames)

    def has_room(self) -> bool:
        return not self._closing and self.queue.has_room()

    @property
    def mode(self) -> str:
        return self.lanes[0].mode

    # -- the encoder ----------------------------------------------------------

    def _run(self) -> None:
        while True:
            items = self.queue.take(ENCODE_CHUNK, ROOM_WAIT_SECONDS)
            if not items:
                if self._closing:
                    return
                continue
            if not self._hand_over(items):
                return

    def _hand_over(self, items: list[Received]) -> bool:
        """Encode ``items`` into their lanes; ``False`` if the grace period ran out meanwhile."""
        lanes, count, encode = self.lanes, len(self.lanes), self.encode
        received = 0
        self._in_hand = len(items)
        try:
            for done, item in enumerate(items):
                self._in_hand = len(items) - done
                try:
                    out = encode(item)
                except Exception:  # a parser bug must not stop the source: log, count, go on
                    self.failed += 1
                    log.exception("%s: could not encode a message from %s", self.name, item[1])
                    continue
                if out is None:
                    continue
                received += 1
                lane = lanes[hash(out[0]) % count]
                while not lane.wait_room(ROOM_WAIT_SECONDS):
                    if self._past_deadline():
                        self._lost += len(items) - done
                        return False
                lane.offer(out[1])
            return True
        finally:
            self._in_hand = 0
            self.received += received
            SOURCE_EVENTS.labels(self.name, "received").inc(received)

    def _past_deadline(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    # -- observation ----------------------------------------------------------

    def pending(self) -> int:
        """Messages received and not yet settled with ingest (queued or in a lane)."""
        return len(self.queue) + self._in_hand + sum(lane.pending() for lane in self.lanes)

    def update_gauge(self) -> None:
        SOURCE_BUFFERED.labels(self.name).set(self.pending())

    def alive(self) -> bool:
        return self._encoder.is_alive() and all(lane.alive() for lane in self.lanes)

    def readiness(self) -> dict[str, str]:
        """``/readyz``: the first lane ingest does not take events from, else ok."""
        for lane in self.lanes:
            checks = lane.readiness()
            if checks.get("ingest") != "ok":
                return checks
        return {"ingest": "ok"}

    def stats(self) -> SenderStats:
        """The lanes' counts summed, with the intake queue's drops and the losses of a stop."""
        total = SenderStats()
        for lane in self.lanes:
            s = lane.stats
            total.queued += s.queued
            total.accepted += s.accepted
            total.duplicates += s.duplicates
            total.rejected += s.rejected
            total.dropped += s.dropped
            total.lost += s.lost
            total.retries += s.retries
            total.last_error = total.last_error or s.last_error
        total.dropped += self.queue.dropped
        total.lost += self._lost
        return total

    def snapshot(self) -> dict[str, Any]:
        """Counters for ``mutt status`` (see ``source_status``)."""
        s = self.stats()
        return {
            "received": self.received,
            "accepted": s.accepted,
            "duplicates": s.duplicates,
            "rejected": s.rejected + self.failed,
            "dropped": s.dropped,
            "lost": s.lost,
            "retries": s.retries,
            "buffered": self.pending(),
            "mode": self.mode,
            "ingest": self.readiness()["ingest"],
        }

    # -- stopping -------------------------------------------------------------

    def close(self, grace: float) -> SenderStats:
        """Encode what is queued and send it all within ``grace`` seconds; count the rest lost.

        The readers must have stopped first: nothing new arrives meanwhile.
        """
        self._deadline = time.monotonic() + max(0.0, grace)
        self._closing = True
        self._encoder.join(max(0.0, self._deadline - time.monotonic()) + 1.0)
        left = self.queue.clear()
        if left:
            self._lost += left
        remaining = max(0.0, self._deadline - time.monotonic())
        closers = [
            threading.Thread(target=lane.close, args=(remaining,), name=f"{self.name}-close")
            for lane in self.lanes
        ]
        for closer in closers:
            closer.start()
        for closer in closers:
            closer.join()
        stats = self.stats()
        unsent = self._lost
        if unsent:
            SOURCE_EVENTS.labels(self.name, "lost").inc(unsent)
            log.error(
                "%s: %d received messages were not yet encoded when the %.0fs grace period "
                "ended: lost",
                self.name,
                unsent,
                grace,
            )
        self.update_gauge()
        return stats
