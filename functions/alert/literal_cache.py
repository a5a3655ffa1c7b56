"""Regex literal analyses shared through Redis, so a cold start skips Python's regex parser.

``required_literals`` parses every regex with Python's ``re`` parser: about
0.45 s of a 10,000-rule cold start here, a third of the rule load. Its
answer depends only on the pattern, the analysis code and the Python
version, so it is kept in one Redis hash per fingerprint of those two
(pattern -> JSON). Any instance that analyses a pattern stores the result;
every later cold start, of any replica, reads them all with one ``HMGET``.

The hash is a cache, never the truth: a value that does not have the shape
of an analysis is ignored and the pattern analysed again, and a Redis error
means analysing everything, as without the cache. A changed ``literals.py``
or another Python gives another hash, so a stale analysis is never read.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from collections.abc import Sequence
from functools import lru_cache
from importlib import metadata, resources

import orjson
import redis

from functions.alert.rules.literals import (
    required_literals,
    requirements_from_data,
    requirements_to_data,
)
from shared.broker.keys import Keys

log = logging.getLogger(__name__)

Requirements = tuple[frozenset[str], ...]
_LIMIT = 4  # rewrite the hash once it holds this many times the patterns in use (+1,000)


@lru_cache(maxsize=1)
def _fingerprint() -> str:
    """Python and the analysis code (its source; the package version if none is shipped)."""
    python = f"{sys.implementation.name}{sys.version_info[0]}.{sys.version_info[1]}"
    try:
        code = resources.files("functions.alert.rules").joinpath("literals.py").read_bytes()
    except OSError:
        code = f"mutt {metadata.version('mutt')}".encode()
    return f"{python}:{hashlib.sha256(code).hexdigest()[:16]}"


def cache_key(namespace: str) -> str:
    return Keys(namespace).rule_literals(_fingerprint())


def _decode(raw: bytes | str | None) -> Requirements | None:
    """An analysis read back, or None when it is missing or not shaped like one."""
    if raw is None:
        return None
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return requirements_from_data(doc)


def _encode(requirements: Requirements) -> bytes:
    return orjson.dumps(requirements_to_data(requirements))


class LiteralAnalyses:
    """An ``Analyse`` for ``RuleSet``: stored answers first, the parser for the rest."""

    def __init__(self, r: redis.Redis, namespace: str) -> None:
        self._r = r
        self._key = cache_key(namespace)

    def __call__(self, patterns: Sequence[str]) -> list[Requirements]:
        """The analyses of ``patterns``, in order: one HMGET, one HSET of what was missing."""
        stored = self._fetch(patterns)
        pairs = list(zip(patterns, stored, strict=True))
        fresh = {p: required_literals(p) for p, known in pairs if known is None}
        self._store(fresh, len(patterns))
        return [fresh[p] if known is None else known for p, known in pairs]

    def _fetch(self, patterns: Sequence[str]) -> list[Requirements | None]:
        if not patterns:
            return []
        try:
            values = self._r.hmget(self._key, list(patterns))
        except redis.RedisError as exc:
            log.warning("regex literal cache unavailable, analysing every pattern: %s", exc)
            return [None] * len(patterns)
        return [_decode(raw) for raw in values]

    def _store(self, fresh: dict[str, Requirements], in_use: int) -> None:
        """Keep what this build analysed; start the hash over when it holds mostly old patterns."""
        if not fresh:
            return
        try:
            pipe = self._r.pipeline(transaction=False)
            pipe.hlen(self._key)
            pipe.hset(self._key, mapping={p: _encode(a) for p, a in fresh.items()})
            size = int(pipe.execute()[0])
            if size > _LIMIT * in_use + 1000:
                self._r.delete(self._key)
        except redis.RedisError as exc:
            log.warning("could not store regex literal analyses: %s", exc)
