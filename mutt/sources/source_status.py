"""A source's counters where operators look: Prometheus metrics and ``mutt status``.

``mutt syslog`` is a process of its own, often on another machine than the
operator's shell, so ``mutt status`` cannot ask it directly. Every few
seconds it writes its counters to one Redis key per instance
(``Keys.source``), with a TTL so an instance that is gone disappears from
the status by itself. The same thread polls the kernel's drop counter of the
UDP socket, so a datagram lost before MUTT ever saw it is still counted
(``mutt_source_kernel_drops_total``) and shown. Publishing is best effort:
a Redis failure is logged and never slows the listener.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import orjson
import redis
from prometheus_client import Counter, Gauge

from mutt.sources.udp_receive import kernel_drops
from shared.broker.keys import Keys

log = logging.getLogger(__name__)

KERNEL_DROPS = Counter(
    "mutt_source_kernel_drops_total",
    "datagrams the kernel dropped before a source read them (socket receive buffer full)",
    ["source"],
)
RECEIVE_BUFFER = Gauge(
    "mutt_source_receive_buffer_bytes",
    "effective UDP socket receive buffer of a source (as the kernel reports it)",
    ["source"],
)

PUBLISH_SECONDS = 5.0
TTL_SECONDS = 30
RECENT_SECONDS = 60.0
POLL_SECONDS = 1.0


def instance_name() -> str:
    """``<host>:<pid>``: unique among the replicas writing to one Redis."""
    return f"{socket.gethostname() or 'localhost'}:{os.getpid()}"


class SourceMonitor:
    """Polls kernel drops each second; publishes the counters every ``publish_seconds``."""

    def __init__(
        self,
        kind: str,
        snapshot: Callable[[], dict[str, Any]],
        *,
        details: dict[str, Any],
        udp_socket: tuple[int, int] | None = None,  # (inode, address family)
        publish: tuple[redis.Redis, Keys] | None = None,
        publish_seconds: float = PUBLISH_SECONDS,
        tick: Callable[[], None] | None = None,
    ) -> None:
        self.kind = kind
        self.snapshot = snapshot
        self.details = details
        self.udp_socket = udp_socket
        self.publish_to = publish
        self.publish_seconds = publish_seconds
        self.tick = tick  # called on every poll (the source refreshes its gauges)
        self.instance = instance_name()
        self.kernel_drops = 0
        self.started_at = time.time()
        self._recent: deque[tuple[float, int]] = deque()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{kind}-monitor", daemon=True)
        self._error_logged_at = -float("inf")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop polling and publish the final counters once."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5.0)
        self.poll()
        self.publish()

    def _run(self) -> None:
        next_publish = 0.0
        while not self._stop.wait(POLL_SECONDS if next_publish else 0.0):
            self.poll()
            now = time.monotonic()
            if now >= next_publish:
                self.publish()
                next_publish = now + self.publish_seconds

    def poll(self) -> None:
        """Read the kernel's drop counter; count what it added since the last poll."""
        if self.tick is not None:
            self.tick()
        if self.udp_socket is None:
            return
        total = kernel_drops(*self.udp_socket)
        if total is None or total <= self.kernel_drops:
            return
        added = total - self.kernel_drops
        self.kernel_drops = total
        KERNEL_DROPS.labels(self.kind).inc(added)
        log.warning(
            "%s: the kernel dropped %d UDP datagrams (socket receive buffer full), %d so far;"
            " see docs/sources.md (receive buffer, replicas)",
            self.kind,
            added,
            total,
        )

    def document(self) -> dict[str, Any]:
        """What ``mutt status`` shows for this instance."""
        doc = {
            "kind": self.kind,
            "instance": self.instance,
            **self.details,
            **self.snapshot(),
            "kernel_drops": self.kernel_drops,
            "started_at": self.started_at,
            "updated_at": time.time(),
        }
        lost_now = int(doc.get("dropped", 0)) + self.kernel_drops
        now = time.monotonic()
        self._recent.append((now, lost_now))
        while len(self._recent) > 1 and now - self._recent[0][0] > RECENT_SECONDS:
            self._recent.popleft()
        doc["dropped_recently"] = lost_now - self._recent[0][1]
        doc["recent_seconds"] = RECENT_SECONDS
        return doc

    def publish(self) -> None:
        if self.publish_to is None:
            return
        r, keys = self.publish_to
        try:
            body = orjson.dumps(self.document())
            r.set(keys.source(self.kind, self.instance), body, ex=TTL_SECONDS)
        except (redis.RedisError, OSError) as exc:
            now = time.monotonic()
            if now - self._error_logged_at >= 60.0:
                self._error_logged_at = now
                log.warning("%s: cannot publish counters for mutt status: %s", self.kind, exc)
