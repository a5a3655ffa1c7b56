"""Lua scripts sent as ``EVALSHA``, alone or many in one pipeline, with no extra round trip.

redis-py's ``Script`` objects make every pipeline that holds one ask
``SCRIPT EXISTS`` first: one more round trip per batch (8.5% of the alert
worker's CPU in a profile, for the unhandled counter alone). Here a
pipeline carries ``EVALSHA`` only; a ``NOSCRIPT`` answer (Redis restarted or
its script cache was flushed) loads the script and runs that one call again,
which is safe because a script that was not found did not run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import redis

Keys = Sequence[str]
Args = Sequence[str | int | float | bytes]


class LuaScript:
    """One script's source and SHA1; run it with ``run`` or ``run_all``."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()

    def run(self, r: redis.Redis, keys: Keys, args: Args) -> Any:
        """One call, one round trip (two when Redis has to be given the script first)."""
        return run_all(r, [(self, keys, args)])[0]


def run_all(r: redis.Redis, calls: Sequence[tuple[LuaScript, Keys, Args]]) -> list[Any]:
    """The calls in one pipelined round trip; their replies in order.

    A call that fails in Redis raises its error (after the NOSCRIPT ones are
    retried), like a pipeline with ``raise_on_error`` would.
    """
    pipe = r.pipeline(transaction=False)
    for script, keys, args in calls:
        pipe.evalsha(script.sha, len(keys), *keys, *args)
    replies: list[Any] = pipe.execute(raise_on_error=False)
    for n, ((script, keys, args), reply) in enumerate(zip(calls, replies, strict=True)):
        if isinstance(reply, redis.exceptions.NoScriptError):
            r.script_load(script.source)
            replies[n] = r.evalsha(script.sha, len(keys), *keys, *args)
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies
