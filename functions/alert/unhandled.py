"""Unhandled events: count them per (host, fingerprint) and raise one meta-alert.

Counting is per fixed window (``unhandled_window_seconds``, aligned to the
epoch); when a fingerprint reaches ``unhandled_threshold`` in its window one
meta-alert fires and the rest of that window is suppressed. ``>=`` rather
than v2.5's ``==``, so lowering the threshold below a running count still
fires. A whole batch is counted in one pipelined round trip, one script
call per host (not per event).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

import redis

from functions.alert.rules import FingerprintMode, fingerprint
from shared.lua import LuaScript, run_all
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
        by_host: dict[str, list[int]] = {}
        for i, ev in enumerate(events):
            by_host.setdefault(ev.hostname, []).append(i)
        calls = []
        for host, items in by_host.items():
            key = f"{self._ns}:unhandled:{{{host}}}:{bucket}"
            args: list[str | int] = [threshold, window_ms, max_fingerprints]
            args += [prints[i] for i in items]
            calls.append((_SCRIPT, [key], args))
        counts = [0] * len(events)
        for items, answer in zip(by_host.values(), run_all(self._r, calls), strict=True):
            for i, n in zip(items, answer, strict=True):
                counts[i] = int(n)
        return [
            Fired(ev, n, fp, window_seconds) if n else None
            for ev, fp, n in zip(events, prints, counts, strict=True)
        ]
