"""Redis key names: built in ``shared/broker/keys.py`` only, byte-identical to what is deployed.

The scan reads every module of ``functions/``, ``shared/`` and ``mutt/``
with ``ast`` and looks for the ways a key name gets formatted: an f-string,
``+``, ``%``, ``str.format`` or ``":".join`` that puts a namespace, a base,
a stream or a ``keys`` attribute in front of ``:``/``!``; a literal hash
tag (``{{p}}`` in an f-string); a literal that is a whole key
(``"mutt:{p}:events"``). Log messages and alert dedup keys
(``f"mutt:{rule}:{host}"``, an identity at the sinks) do not match.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.broker.keys import CorrelationKeys, Keys, schedule_keys

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("functions", "shared", "mutt")
HOME = Path("shared/broker/keys.py")

# Findings accepted on purpose: (path, source line stripped) -> why. Empty: keep it so.
ALLOWED: dict[tuple[str, str], str] = {}

# The last name of an expression that holds a key or a key's prefix.
KEYISH_NAMES = {"namespace", "ns", "base", "stream", "prefix"}
TAG = re.compile(r"\{[A-Za-z_]\w*\}")  # a hash tag written literally: {p}, {corr} (not {2})
WHOLE_KEY = re.compile(r"^[\w.-]+:\{[A-Za-z_]\w*\}[:!]\S*$")  # "mutt:{p}:events"


def _chain(expr: ast.expr) -> list[str]:
    """The names of ``a.b.c`` / ``a.b.c(...)`` / ``a[...]``, outermost first."""
    names: list[str] = []
    while True:
        if isinstance(expr, ast.Call | ast.Subscript):
            expr = expr.func if isinstance(expr, ast.Call) else expr.value
        elif isinstance(expr, ast.Attribute):
            names.append(expr.attr)
            expr = expr.value
        elif isinstance(expr, ast.Name):
            names.append(expr.id)
            return names[::-1]
        else:
            return names[::-1]


def _keyish(expr: ast.expr) -> bool:
    """Does ``expr`` look like a key or a key's prefix (``self.keys.base``, ``namespace``)?"""
    if isinstance(expr, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) and _keyish(v.value) for v in expr.values[:1])
    names = _chain(expr)
    if not names:
        return False
    return names[-1] in KEYISH_NAMES or any(n.lstrip("_") == "keys" for n in names)


def _continues_key(text: str) -> bool:
    """Text that, right after a key prefix, continues a key name (not ``": "`` of a message)."""
    return text[:1] == "!" or text == "*" or (text[:1] == ":" and not text[1:2].isspace())


def _str(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _adds(node: ast.expr) -> list[ast.expr]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _adds(node.left) + _adds(node.right)
    return [node]


def _docstrings(tree: ast.Module) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and _str(body[0].value) is not None:
                found.add(id(body[0].value))
    return found


def key_formatting(source: str) -> Iterator[tuple[int, str]]:
    """(line, why) of every place in ``source`` that seems to format a Redis key name."""
    tree = ast.parse(source)
    docstrings = _docstrings(tree)
    inside_fstrings = {
        id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for v in node.values
    }
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.JoinedStr):
            parts = node.values
            for n, part in enumerate(parts):
                text = _str(part)
                if text is not None and TAG.search(text):
                    yield line, "a hash tag in an f-string"
                if (
                    isinstance(part, ast.FormattedValue)
                    and _keyish(part.value)
                    and n + 1 < len(parts)
                    and _continues_key(_str(parts[n + 1]) or "")
                ):
                    yield line, "an f-string continuing a key prefix"
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            operands = _adds(node)
            texts = [t for t in map(_str, operands) if t is not None]
            if any(map(_keyish, operands)) and any(map(_continues_key, texts)):
                yield line, "+ continuing a key prefix"
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
            template = _str(node.left) or ""
            values = node.right.elts if isinstance(node.right, ast.Tuple) else [node.right]
            if re.search(r"%\w:", template) and any(map(_keyish, values)):
                yield line, "% continuing a key prefix"
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            target = _str(node.func.value)
            args = list(node.args) + [k.value for k in node.keywords]
            formats = node.func.attr == "format" and target and "}:" in target
            if formats and any(map(_keyish, args)):
                yield line, "str.format continuing a key prefix"
            if node.func.attr == "join" and target in (":", "!") and args:
                items = args[0].elts if isinstance(args[0], ast.List | ast.Tuple) else []
                if any(map(_keyish, items)):
                    yield line, "a join continuing a key prefix"
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and id(node) not in inside_fstrings
            and WHOLE_KEY.match(node.value)
        ):
            yield line, "a literal key name"


def _modules() -> Iterator[Path]:
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = path.relative_to(ROOT)
            if ".venv" not in rel.parts and rel != HOME:
                yield rel


def test_no_key_name_is_formatted_outside_keys_py() -> None:
    found = []
    for rel in _modules():
        source = (ROOT / rel).read_text()
        lines = source.splitlines()
        for line, why in key_formatting(source):
            text = lines[line - 1].strip()
            if (str(rel), text) not in ALLOWED:
                found.append(f"{rel}:{line}: {why}: {text}")
    assert not found, "build these names in shared/broker/keys.py:\n" + "\n".join(found)


def test_the_allowlist_has_no_stale_entries() -> None:
    for (path, text), why in ALLOWED.items():
        assert why, f"{path}: say why it is allowed"
        assert text in (ROOT / path).read_text(), f"{path}: {text!r} is gone, drop it"


@pytest.mark.parametrize(
    "snippet",
    [
        'k = f"{self.keys.base}:breaker:{sink}"',
        'k = f"{self.ctx.settings.namespace}:janitor:lock:{name}"',
        'k = f"{namespace}:rules:version"',
        'k = f"{ns}:{{corr}}"',
        'k = f"x{{unhandled}}!top"',
        'k = f"{stream}:scheduled"',
        'k = f"{keys.events}!parked"',
        "k = keys.base + ':' + sink",
        "k = prefix + '*'",
        "k = '%s:config' % namespace",
        "k = '{}:hb:{}'.format(self.namespace, group)",
        "k = ':'.join([keys.base, 'rl', sink])",
        "k = 'mutt:{p}:events'",
        "k = f'{f\"{namespace}\"}:x'",
    ],
)
def test_the_scan_finds_key_names(snippet: str) -> None:
    assert list(key_formatting(snippet)), snippet


@pytest.mark.parametrize(
    "snippet",
    [
        'log.info(f"{stream}: {n} entries")',
        'msg = f"{n} dead letters in dlq:{stage}"',
        'dedup_key = f"mutt:{rule_id}:{hostname}"',
        'where = f"{self.host}:{self.port}"',
        'auth = f"{username}:{password}"',
        'ce_id = f"{job.alert.alert_id}:{job.sink}"',
        'def f():\n    """Keys look like ``mutt:{p}:events``."""',
        'help = "prefix of every Redis key (streams are <namespace>:{p}:events ...)"',
        "text = ', '.join([namespace, base])",
        'stamp = re.compile(rf"{_MONTH} \\d{{2}}:\\d{{2}}")',
    ],
)
def test_the_scan_leaves_other_text_alone(snippet: str) -> None:
    assert not list(key_formatting(snippet)), snippet


def test_key_names_are_those_deployed() -> None:
    """Installations hold data under these names: a change here orphans it."""
    k = Keys("ns")
    assert k.all_streams() == [
        "ns:{p}:events",
        "ns:{p}:alerts",
        "ns:{p}:audit",
        "ns:{p}:delivered",
        "ns:{p}:dlq:alert",
        "ns:{p}:dlq:forward",
        "ns:{p}:dlq:audit",
    ]
    assert schedule_keys(k.alerts) == ("ns:{p}:alerts:scheduled", "ns:{p}:alerts:scheduled:body")
    assert k.ingest_rate_limit == "ns:{p}:rl:ingest"
    assert k.dedup("e1") == "ns:{p}:dedup:e1"
    assert k.breaker("pd") == "ns:{p}:breaker:pd"
    assert k.breaker_pattern() == "ns:{p}:breaker:*"
    assert k.breaker_sink("ns:{p}:breaker:pd") == "pd"
    assert k.sink_rate_limit("pd") == "ns:{p}:rl:sink:pd"
    assert k.delivered_marker("pd", "a1") == "ns:{p}:delivered:pd:a1"
    assert k.unhandled_window("h", 7) == "ns:{unhandled}:h:7"
    assert k.unhandled_top(7) == "ns:{unhandled}!top:7"
    assert k.unhandled_samples(7) == "ns:{unhandled}!samples:7"
    assert k.config == "ns:config"
    assert k.heartbeat("alert", "c1") == "ns:hb:alert:c1"
    assert k.heartbeat_pattern("alert") == "ns:hb:alert:*"
    assert k.rules_version == "ns:rules:version"
    assert k.rule_literals("cpython3.11:ab") == "ns:rules:literals:cpython3.11:ab"
    assert k.rule_index("0123abcd") == "ns:rules:index:0123abcd"
    assert k.janitor_lock("reclaim") == "ns:janitor:lock:reclaim"
    assert k.relative(k.dlq("forward")) == "dlq:forward"
    c = k.correlation
    assert c == CorrelationKeys("ns")
    assert c.state("mutt:1:h") == "ns:{corr}:k:mutt:1:h"
    assert c.state_pattern() == "ns:{corr}:k:*"
    assert c.storm_host("h", 9) == "ns:{corr}:storm:h:9:h"
    assert c.storm_global(9) == "ns:{corr}:storm:g:9"
    assert c.config == "ns:correlation"
    assert c.silences == "ns:silences"


def _tag(key: str) -> str:
    """The part Redis Cluster hashes: the first ``{...}`` with something inside, else all."""
    start = key.find("{")
    end = key.find("}", start + 1)
    return key[start + 1 : end] if start >= 0 and end > start + 1 else key


def test_keys_used_together_share_a_hash_tag() -> None:
    """Each script's or MULTI's keys, as the code passes them, hash to one slot."""
    k = Keys("ns")
    c = k.correlation
    together = {
        "settle MULTI": [*k.all_streams(), *schedule_keys(k.alerts), *schedule_keys(k.events)],
        "promote.lua": [*schedule_keys(k.alerts), k.alerts],
        "admit.lua": [k.ingest_rate_limit, k.events, k.dedup("e1"), k.dedup("e2")],
        "gate.lua": [k.breaker("s"), k.sink_rate_limit("s"), k.delivered_marker("s", "a")],
        "finish.lua": [k.breaker("s"), k.delivered_marker("s", "a")],
        "unhandled.lua": [k.unhandled_window("h", 1), k.unhandled_top(1), k.unhandled_samples(1)],
        "correlate.lua": [c.state("x"), c.storm_host("h", 1), c.storm_global(1)],
    }
    for what, names in together.items():
        assert len({_tag(n) for n in names}) == 1, f"{what}: {names}"


def test_partition_keys_carry_their_tag_and_share_the_rest() -> None:
    """Partition 0 is the deployed ``{p}``; partition k's streams and side keys carry
    ``TAGS[k]``; what every partition shares stays under ``{p}``."""
    k = Keys("ns", partitions=3)
    assert k.events == "ns:{p}:events" and k.index == 0
    p2 = k.partition(2)
    assert p2.index == 2
    assert p2.events == "ns:{p2.7mb}:events"
    assert p2.dlq("forward") == "ns:{p2.7mb}:dlq:forward"
    assert p2.dedup("e1") == "ns:{p2.7mb}:dedup:e1"
    assert schedule_keys(p2.alerts) == (
        "ns:{p2.7mb}:alerts:scheduled",
        "ns:{p2.7mb}:alerts:scheduled:body",
    )
    assert p2.relative(p2.audit) == "audit"
    for shared in (p2.ingest_rate_limit, p2.breaker("s"), p2.delivered_marker("s", "a")):
        assert shared.startswith("ns:{p}:"), shared
    assert p2.config == k.config == "ns:config"
    assert [p.index for p in k.all_partitions()] == [0, 1, 2]
    assert len(k.all_streams()) == 3 * len(Keys("ns").all_streams())
    assert Keys("ns").all_streams() == Keys("ns").streams()


@pytest.mark.parametrize("bad", [0, 97])
def test_a_partition_count_out_of_range_is_refused(bad: int) -> None:
    with pytest.raises(ValueError, match=r"partitions must be 1\.\.96"):
        Keys("ns", partitions=bad)


def test_there_is_no_partition_beyond_the_count() -> None:
    with pytest.raises(ValueError, match="no partition 3"):
        Keys("ns", partitions=3).partition(3)


def test_keys_used_together_in_a_partition_share_its_hash_tag() -> None:
    """With partitions, each hand-off stays in one partition's slot."""
    for part in Keys("ns", partitions=6).all_partitions():
        together = {
            "settle MULTI": [*part.streams(), *schedule_keys(part.alerts)],
            "promote.lua": [*schedule_keys(part.events), part.events],
            "admit.lua (several partitions)": [part.events, part.dedup("e1"), part.dedup("e2")],
            "dlq_replay.lua": [part.dlq("alert"), part.events],
        }
        for what, names in together.items():
            assert {_tag(n) for n in names} == {part.tag}, f"{what}: {names}"
