"""shared.lua against real Redis: EVALSHA in pipelines, NOSCRIPT recovery, errors raised."""

from __future__ import annotations

import uuid

import pytest
import redis

from shared.broker.keys import Keys
from shared.lua import LuaScript, run_all


def test_unknown_scripts_are_loaded_and_every_reply_kept_in_order(
    r: redis.Redis, keys: Keys
) -> None:
    salt = f"-- {uuid.uuid4()}\n"  # Redis has never seen this source
    incr = LuaScript(salt + "return redis.call('INCRBY', KEYS[1], ARGV[1])")
    echo = LuaScript(salt + "return ARGV[1]")
    key = f"{keys.base}:lua:n"
    replies = run_all(r, [(incr, [key], [2]), (echo, [], ["x"]), (incr, [key], [3])])
    assert replies == [2, b"x", 5]  # each call ran exactly once
    assert incr.run(r, [key], [1]) == 6


def test_a_failing_script_raises_after_the_others_ran(r: redis.Redis, keys: Keys) -> None:
    key = f"{keys.base}:lua:m"
    ok = LuaScript("return redis.call('INCR', KEYS[1])")
    bad = LuaScript("return redis.call('NOSUCHCOMMAND')")
    with pytest.raises(redis.ResponseError):
        run_all(r, [(ok, [key], []), (bad, [], [])])
    assert int(r.get(key) or 0) == 1
