"""Redis key names of correlation state, in one place.

Every key a batch touches shares the hash tag ``{corr}``, so the one Lua
script a batch runs stays legal on Redis Cluster (all keys in one slot);
the configuration and the silences are read on their own, outside it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

MAX_KEY = 255  # Alert.dedup_key's limit


def bounded(key: str, limit: int = MAX_KEY) -> str:
    """``key`` if it fits, else a readable head plus a hash of the whole (still unique)."""
    if len(key) <= limit:
        return key
    digest = hashlib.sha1(key.encode("utf-8", "surrogatepass"), usedforsecurity=False)
    return f"{key[: limit - 17]}#{digest.hexdigest()[:16]}"


@dataclass(frozen=True)
class CorrelationKeys:
    namespace: str

    @property
    def base(self) -> str:
        return f"{self.namespace}:{{corr}}"

    def state(self, dedup_key: str) -> str:
        """The hash holding one alert key's pairing, flapping and dedup state."""
        return f"{self.base}:k:{dedup_key}"

    def state_pattern(self) -> str:
        return f"{self.base}:k:*"

    def storm_host(self, hostname: str, bucket: int) -> str:
        """Alerts of one host in one minute (``bucket`` = epoch minute)."""
        return f"{self.base}:storm:h:{bucket}:{hostname}"

    def storm_global(self, bucket: int) -> str:
        return f"{self.base}:storm:g:{bucket}"

    @property
    def config(self) -> str:
        """The applied correlation file (JSON)."""
        return f"{self.namespace}:correlation"

    @property
    def silences(self) -> str:
        """Silences by id (JSON per field)."""
        return f"{self.namespace}:silences"
