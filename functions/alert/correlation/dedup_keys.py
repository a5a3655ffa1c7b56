"""Alert dedup keys (an alert's identity at the sinks, not a Redis key) kept within bounds.

Correlation derives dedup keys from rule ids, host names, instances and
Alertmanager fingerprints, any of which can be long; ``Alert.dedup_key``
holds at most 255 characters.
"""

from __future__ import annotations

import hashlib

MAX_KEY = 255  # Alert.dedup_key's limit


def bounded(key: str, limit: int = MAX_KEY) -> str:
    """``key`` if it fits, else a readable head plus a hash of the whole (still unique)."""
    if len(key) <= limit:
        return key
    digest = hashlib.sha1(key.encode("utf-8", "surrogatepass"), usedforsecurity=False)
    return f"{key[: limit - 17]}#{digest.hexdigest()[:16]}"
