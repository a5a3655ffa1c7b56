"""Unhandled events: count them per (host, fingerprint) and raise one meta-alert.

Counting is per fixed window (``unhandled_window_seconds``, aligned to the
epoch); when a fingerprint reaches ``unhandled_threshold`` in its window one
meta-alert fires and the rest of that window is suppressed. ``>=`` rather
than v2.5's ``==``, so lowering the threshold below a running count still
fires. A whole batch is counted with one script call: all counter keys
share the hash tag ``{unhandled}`` (legal on Redis Cluster, like
correlation's ``{corr}``), because one call per host cost a server-side
script run and a client-side command per host, and a batch of syslog from
a fleet holds many hosts.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis

from functions.alert.rules import FingerprintMode, fingerprint
from shared.broker.keys import Keys
from shared.lua import LuaScript
from shared.models import Event

_SCRIPT = LuaScript.from_files("functions/alert/unhandled.lua")


@dataclass(frozen=True)
class Fired:
    """A fingerprint that crossed the threshold with this event."""

    event: Event
    count: int
    fingerprint: str
    window_seconds: int


SAMPLE_CHARS = 200  # of a message kept as the sample of its fingerprint


@dataclass(frozen=True)
class TopUnhandled:
    """One of the window's most frequent unhandled fingerprints."""

    fingerprint: str
    count: int
    hostname: str
    message: str


class UnhandledCounter:
    def __init__(self, r: redis.Redis, namespace: str, mode: FingerprintMode = "masked") -> None:
        self._r = r
        self._keys = Keys(namespace)
        self.mode = mode

    def count(
        self, events: Sequence[Event], threshold: int, window_seconds: int, max_fingerprints: int
    ) -> list[Fired | None]:
        """Count each event; the result says, per event, whether it fired."""
        if not events:
            return []
        window_ms = window_seconds * 1000
        bucket = int(time.time() * 1000) // window_ms
        prints = [fingerprint(ev.hostname, ev.message, self.mode) for ev in events]
        slots: dict[str, int] = {}  # host -> its key's index in KEYS (1-based)
        samples: dict[str, str] = {}
        pairs: list[str | int] = []
        for ev, fp in zip(events, prints, strict=True):
            pairs += [slots.setdefault(ev.hostname, len(slots) + 1), fp]
            samples.setdefault(fp, f"{ev.hostname}\t{ev.message[:SAMPLE_CHARS]}")
        args: list[str | int] = [threshold, window_ms, max_fingerprints, len(samples)]
        for fp, sample in samples.items():
            args += [fp, sample]
        args += pairs
        keys = [self._keys.unhandled_window(host, bucket) for host in slots]
        keys += [self._keys.unhandled_top(bucket), self._keys.unhandled_samples(bucket)]
        counts = [int(n) for n in _SCRIPT.run(self._r, keys, args)]
        return [
            Fired(ev, n, fp, window_seconds) if n else None
            for ev, fp, n in zip(events, prints, counts, strict=True)
        ]


def top_unhandled(
    r: redis.Redis, namespace: str, window_seconds: int, limit: int = 10
) -> list[TopUnhandled]:
    """The current window's most frequent unhandled fingerprints, most frequent first."""
    keys = Keys(namespace)
    bucket = int(time.time() * 1000) // (window_seconds * 1000)
    rows: Any = r.zrevrange(keys.unhandled_top(bucket), 0, limit - 1, withscores=True)
    if not rows:
        return []
    prints = [fp.decode() if isinstance(fp, bytes) else str(fp) for fp, _ in rows]
    raw: Any = r.hmget(keys.unhandled_samples(bucket), prints)
    found = []
    for (_, score), fp, sample in zip(rows, prints, raw, strict=True):
        text = sample.decode("utf-8", "replace") if isinstance(sample, bytes) else ""
        host, _, message = text.partition("\t")
        found.append(TopUnhandled(fp, int(score), host, message))
    return found
