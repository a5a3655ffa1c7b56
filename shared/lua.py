"""Lua scripts sent as ``EVALSHA``, alone or many in one pipeline, with no extra round trip.

redis-py's ``Script`` objects make every pipeline that holds one ask
``SCRIPT EXISTS`` first: one more round trip per batch (8.5% of the alert
worker's CPU in a profile, for the unhandled counter alone). Here a
pipeline carries ``EVALSHA`` only; a ``NOSCRIPT`` answer (Redis restarted or
its script cache was flushed) loads the script and runs that one call again,
which is safe because a script that was not found did not run.

Every script is ``.lua`` files, never Lua text inside Python: a script that
needs a library (``shared/sliding_window.lua``, ``functions/forward/breaker.lua``)
is made by ``LuaScript.from_files`` from the library's file followed by its
own, the one way production and tests alike build it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from importlib import resources
from typing import Any, NamedTuple

import redis

Keys = Sequence[str]
Args = Sequence[str | int | float | bytes]


class LuaScript:
    """One script's source and SHA1; run it with ``run`` or ``run_all``."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()

    @classmethod
    def from_files(cls, *paths: str) -> LuaScript:
        """The files, in order, as one script: libraries first, the script's own body last.

        A path is relative to the repository root (``functions/forward/gate.lua``)
        and read as a resource of the package it lies in, so it is found in an
        installed wheel as in a checkout.
        """
        if not paths:
            raise ValueError("a script needs at least one file")
        return cls("\n".join(_read(path) for path in paths))

    def run(self, r: redis.Redis, keys: Keys, args: Args) -> Any:
        """One call, one round trip (two when Redis has to be given the script first)."""
        return run_all(r, [(self, keys, args)])[0]


def _read(path: str) -> str:
    folder, _, name = path.rpartition("/")
    if not folder or not name.endswith(".lua"):
        raise ValueError(f"{path!r} is not a .lua file inside a package")
    return resources.files(folder.replace("/", ".")).joinpath(name).read_text()


class Call(NamedTuple):
    """One script call, ready for ``run_all`` (or ``run`` alone)."""

    script: LuaScript
    keys: Keys
    args: Args

    def run(self, r: redis.Redis) -> Any:
        return self.script.run(r, self.keys, self.args)


def run_all(r: redis.Redis, calls: Sequence[tuple[LuaScript, Keys, Args]]) -> list[Any]:
    """The calls in one pipelined round trip; their replies in order.

    A call that fails in Redis raises its error (after the NOSCRIPT ones are
    retried), like a pipeline with ``raise_on_error`` would. A single call is
    sent without a pipeline: the same one round trip, without the pipeline's
    own cost (large with the cluster client, which sorts a pipeline's
    commands by node).
    """
    if len(calls) == 1:
        script, keys, args = calls[0]
        try:
            return [r.evalsha(script.sha, len(keys), *keys, *args)]
        except redis.exceptions.NoScriptError:
            r.script_load(script.source)
            return [r.evalsha(script.sha, len(keys), *keys, *args)]
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
