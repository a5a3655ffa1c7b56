"""Dedup window: repeats of an alert key within a window update a counter, not the sink.

With ``alert_dedup_seconds`` > 0, the first alert of a dedup key is
delivered and opens a window; repeats inside it only increment a counter in
the key's state (``dedup_window.lua``). The next alert after the window is
delivered again, as a reminder that the problem is still there. A resolve
(paired clear) closes the window, so a new problem right after a clear is
never swallowed. Redelivery of the delivered alert itself (same alert id)
is delivered again: forward de-duplicates by alert id.
"""

from __future__ import annotations

from typing import Any

import redis

from shared.broker.keys import CorrelationKeys


def repeats(r: redis.Redis, keys: CorrelationKeys, dedup_key: str) -> int:
    """Repeats counted in the current window of ``dedup_key`` (0 when none)."""
    raw: Any = r.hget(keys.state(dedup_key), "dn")
    return int(raw) if raw else 0
