"""A Redis lock with expiry, so two janitors never run the same task at once.

The lock holds a random token; release deletes it only if the token is
still ours (a run that outlived its expiry must not free someone else's).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from shared.lua import LuaScript

_RELEASE = LuaScript.from_files("functions/janitor/release.lua")


@contextmanager
def task_lock(r: redis.Redis, key: str, ttl_seconds: int) -> Iterator[bool]:
    """Yields True when this run holds the lock, False when another does."""
    token = secrets.token_hex(16)
    held = bool(r.set(key, token, nx=True, ex=ttl_seconds))
    try:
        yield held
    finally:
        if held:
            _RELEASE.run(r, [key], [token])
