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
from importlib import resources

import redis

from functions.alert.rules import FingerprintMode, fingerprint
from shared.lua import LuaScript
from shared.models import Event

_SCRIPT = LuaScript(resources.files("functions.alert").joinpath("unhandled.lua").read_text())


@dataclass(frozen=True)
class Fired:
    """A fingerprint that crossed the threshold with this event."""

    event: Event
    count: int
    fingerprint: str
    window_seconds: int


class UnhandledCounter:
    def __init__(self, r: redis.Redis, namespace: str, mode: FingerprintMode = "masked") -> None:
        self._r = r
        self._ns = namespace
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
        args: list[str | int] = [threshold, window_ms, max_fingerprints]
        for ev, fp in zip(events, prints, strict=True):
            args += [slots.setdefault(ev.hostname, len(slots) + 1), fp]
        keys = [f"{self._ns}:{{unhandled}}:{host}:{bucket}" for host in slots]
        counts = [int(n) for n in _SCRIPT.run(self._r, keys, args)]
        return [
            Fired(ev, n, fp, window_seconds) if n else None
            for ev, fp, n in zip(events, prints, counts, strict=True)
        ]
