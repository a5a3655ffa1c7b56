"""Unhandled events: count them per (host, fingerprint) and raise one meta-alert.

Counting is per fixed window (``unhandled_window_seconds``, aligned to the
epoch); when a fingerprint reaches ``unhandled_threshold`` in its window one
meta-alert fires and the rest of that window is suppressed. ``>=`` rather
than v2.5's ``==``, so lowering the threshold below a running count still
fires. A whole batch is counted in one pipelined round trip.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

import redis

from functions.alert.rules import FingerprintMode, fingerprint
from shared.models import Event

_SCRIPT = resources.files("functions.alert").joinpath("unhandled.lua").read_text()


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
        self._script = r.register_script(_SCRIPT)

    def count(
        self, events: Sequence[Event], threshold: int, window_seconds: int, max_fingerprints: int
    ) -> list[Fired | None]:
        """Count each event; the result says, per event, whether it fired."""
        if not events:
            return []
        window_ms = window_seconds * 1000
        bucket = int(time.time() * 1000) // window_ms
        pipe = self._r.pipeline(transaction=False)
        prints = []
        for ev in events:
            fp = fingerprint(ev.hostname, ev.message, self.mode)
            prints.append(fp)
            key = f"{self._ns}:unhandled:{{{ev.hostname}}}:{bucket}"
            self._script(keys=[key], args=[fp, threshold, window_ms, max_fingerprints], client=pipe)
        answers = pipe.execute()
        return [
            Fired(ev, int(n), fp, window_seconds) if int(n) else None
            for ev, fp, n in zip(events, prints, answers, strict=True)
        ]
