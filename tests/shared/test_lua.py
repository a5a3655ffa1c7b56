"""shared.lua against real Redis: EVALSHA in pipelines, NOSCRIPT recovery, errors raised."""

from __future__ import annotations

import ast
import re
import uuid
from pathlib import Path

import pytest
import redis

from shared.broker.keys import Keys
from shared.lua import LuaScript, run_all

ROOT = Path(__file__).resolve().parents[2]


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


def test_a_single_unknown_script_is_loaded_and_run_once(r: redis.Redis, keys: Keys) -> None:
    """One call goes without a pipeline; its NOSCRIPT is recovered the same way."""
    incr = LuaScript(f"-- {uuid.uuid4()}\nreturn redis.call('INCRBY', KEYS[1], ARGV[1])")
    key = f"{keys.base}:lua:one"
    assert run_all(r, [(incr, [key], [2])]) == [2]
    assert incr.run(r, [key], [3]) == 5


def test_a_failing_script_raises_after_the_others_ran(r: redis.Redis, keys: Keys) -> None:
    key = f"{keys.base}:lua:m"
    ok = LuaScript("return redis.call('INCR', KEYS[1])")
    bad = LuaScript("return redis.call('NOSUCHCOMMAND')")
    with pytest.raises(redis.ResponseError):
        run_all(r, [(ok, [key], []), (bad, [], [])])
    assert int(r.get(key) or 0) == 1


def test_a_script_is_its_files_in_order() -> None:
    paths = ("shared/sliding_window.lua", "functions/forward/breaker.lua")
    script = LuaScript.from_files(*paths)
    assert script.source == "\n".join((ROOT / p).read_text() for p in paths)
    assert LuaScript.from_files(*reversed(paths)).sha != script.sha


@pytest.mark.parametrize("path", ["sliding_window.lua", "shared/sliding_window.py", "/x.lua"])
def test_a_path_that_is_not_a_lua_file_in_a_package_is_refused(path: str) -> None:
    with pytest.raises(ValueError, match=r"not a \.lua file inside a package"):
        LuaScript.from_files(path)


def test_a_missing_file_is_reported() -> None:
    with pytest.raises(FileNotFoundError):
        LuaScript.from_files("shared/no_such_script.lua")


def test_a_library_function_runs_in_the_script_after_it(r: redis.Redis, keys: Keys) -> None:
    """The composition production uses: the gate calls the breaker's and the limiter's."""
    gate = LuaScript.from_files(
        "shared/sliding_window.lua", "functions/forward/breaker.lua", "functions/forward/gate.lua"
    )
    reply = gate.run(r, [keys.breaker("s"), keys.sink_rate_limit("s"), "x"], [100, 100, 5, 1000])
    assert reply == [1, b"closed", 0, 1, 0, b"0"]
    assert r.exists(keys.sink_rate_limit("s"))  # sliding_window took the permit
    assert not r.exists(keys.breaker("s"))  # breaker_admit read a closed breaker


LUA = re.compile(r"redis\.p?call\(|\bKEYS\[\d|\blocal function\b")  # in a Python string: Lua

# Inline Lua still waiting for its own file: path -> why.
INLINE_ALLOWED: dict[str, str] = {}


def test_no_lua_source_lives_in_python() -> None:
    """Every script is a .lua file, composed by LuaScript.from_files, the same in tests."""
    found = []
    for top in ("functions", "shared", "mutt"):
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = str(path.relative_to(ROOT))
            for node in ast.walk(ast.parse(path.read_text())):
                text = node.value if isinstance(node, ast.Constant) else None
                lua = isinstance(text, str) and LUA.search(text)
                if lua and rel not in INLINE_ALLOWED:
                    found.append(f"{rel}:{node.lineno}")
    assert not found, "move this Lua into a .lua file: " + ", ".join(found)
    for rel in INLINE_ALLOWED:
        path = ROOT / rel
        stale = not path.exists() or "redis.call(" not in path.read_text()
        assert not stale, f"{rel} has no inline Lua (any more): take it off INLINE_ALLOWED"
