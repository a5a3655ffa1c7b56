"""The compiled rule index kept in Redis, so a cold start loads it instead of rebuilding.

A scale from zero pays for the rules before its first answer: building
10,000 rules from rows (validation, RE2 compiles, regex analyses, indexes)
took about 0.3 s of a 0.45 s first request. Any instance that builds a
``RuleSet`` stores it (``rules/stored.py``) under one key per code
fingerprint; every later start, of any replica, loads it in a fraction of that.

Which rules it holds is named by content, not by the rules version: the
stored value starts with the SHA-256 of the rules it was built from, as
PostgreSQL computed it with them (``store.load_rules_document``), and is
used only when that is the digest the database gives now
(``store.rules_digest``). A rule change (whatever wrote it, with or without
a version bump) therefore never serves stale rules, and a reset of the
version counter cannot make an old index look current.

The key names what the stored data depends on: the rule engine's source,
``shared/models.py`` (handling and severity values), this module, Python,
pydantic and the RE2 library; other code reads and writes another key.
The value is a cache, never the truth: missing, stale, garbled or
wrongly-shaped data, or a Redis error, means building from the rows, as
without it. Each key expires ``TTL_SECONDS`` after it was last read or written.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from functools import lru_cache
from importlib import metadata, resources

import pydantic
import re2
import redis

from functions.alert.rules import RuleSet
from functions.alert.rules.stored import Analyses, dump, load
from shared.broker.keys import Keys

log = logging.getLogger(__name__)

TTL_SECONDS = 30 * 24 * 3600  # one unused key per code version goes away within a month
_SEPARATOR = b"\n"
# Sources whose change changes what a stored index means.
_SOURCES = (
    ("functions.alert.rules", None),
    ("shared", "models.py"),
    ("functions.alert", "index_cache.py"),
)


def _library_identity(module_file: str | None) -> str:
    """Size and modification time of a compiled library (a reinstall gives another)."""
    try:
        st = os.stat(module_file or "")
    except OSError:
        return "?"
    return f"{st.st_size}-{st.st_mtime_ns}"


@lru_cache(maxsize=1)
def fingerprint() -> str:
    """The code and libraries a stored index depends on, as 16 hex digits."""
    digest = hashlib.sha256()
    python = f"{sys.implementation.name}{sys.version_info[0]}.{sys.version_info[1]}"
    digest.update(f"{python} pydantic {pydantic.VERSION}".encode())
    digest.update(_library_identity(getattr(re2, "_re2", re2).__file__).encode())
    try:
        for package, name in _SOURCES:
            root = resources.files(package)
            files = [root.joinpath(name)] if name else sorted(root.iterdir(), key=str)
            for path in files:
                if path.name.endswith(".py"):
                    digest.update(path.name.encode())
                    digest.update(path.read_bytes())
    except OSError:  # no sources shipped: the package version stands for them
        digest.update(f"mutt {metadata.version('mutt')}".encode())
    return digest.hexdigest()[:16]


def index_key(namespace: str) -> str:
    return Keys(namespace).rule_index(fingerprint())


class IndexCache:
    """Load the stored ``RuleSet`` of a rules digest, or store a freshly built one."""

    def __init__(self, r: redis.Redis, namespace: str) -> None:
        self._r = r
        self._key = index_key(namespace)

    def load(self, digest: str) -> RuleSet | None:
        """The stored index of exactly these rules, or None (then build and ``store``)."""
        try:
            raw = self._r.getex(self._key, ex=TTL_SECONDS)
        except redis.RedisError as exc:
            log.warning("compiled rule index unavailable, building the rules: %s", exc)
            return None
        if not isinstance(raw, bytes):
            return None
        head = digest.encode() + _SEPARATOR
        if not raw.startswith(head):
            return None  # another rule set's (stale) or not ours
        try:
            return load(memoryview(raw)[len(head) :])
        except Exception as exc:  # a cache never stops a load: build instead
            log.warning("stored rule index ignored, building the rules: %s", exc)
            return None

    def store(self, digest: str, ruleset: RuleSet, analyses: Analyses) -> None:
        """Keep ``ruleset`` (built from the rules with this digest) for the next start."""
        try:
            data = digest.encode() + _SEPARATOR + dump(ruleset, analyses)
            self._r.set(self._key, data, ex=TTL_SECONDS)
        except Exception as exc:  # a cache never stops a load
            log.warning("could not store the compiled rule index: %s", exc)
