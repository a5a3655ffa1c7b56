"""Required literals of a regex: the prefilter that keeps regex cost flat.

``required_literals(p)`` returns requirements (sets of lower-cased ASCII
strings) such that every text RE2 matches with ``p`` (case-insensitively)
contains, in ``prefilter_text(text)``, at least one literal of *each*
requirement; ``()`` when nothing can be shown. The most selective
requirement keys the pattern in one Aho-Corasick automaton over all rules;
the others are cheap ``in`` checks before RE2 runs. An event thus only pays
for the regexes whose literals it contains, whatever the number of rules.
(FilteredRE2 does the same, but its Python binding scans with a default-
memory RE2 set, so it must be sharded and then costs one scan per shard.)

Soundness rules (a wrong literal would make a rule silently miss):

* The pattern is parsed with Python's own regex parser, which reads the
  RE2 subset rule authors use the same way. Syntax where the two dialects
  differ (POSIX classes ``[[:alpha:]]``, ``\\p``, ``\\Q``, ``\\C``, ``\\x``,
  odd ``{`` forms) or that Python rejects gives ``()``; such patterns go to
  the FilteredRE2 shards instead.
* Only runs of ASCII characters that must appear consecutively are used;
  anything optional, repeated-zero-times, a class, or an anchor breaks a run.
* Case: literals are lower-cased and matched against the lower-cased text.
  RE2's case folding maps only two non-ASCII characters onto ASCII letters
  (KELVIN SIGN to k, LONG S to s); Python's ``lower`` already handles the
  first and ``prefilter_text`` maps the second.
"""

from __future__ import annotations

import re
import warnings
from functools import lru_cache
from re import _constants as sre  # type: ignore[attr-defined]  # parser node types
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

MIN_LITERAL = 3  # shorter literals hit too often to filter anything
_UNSAFE = re.compile(r"\[:|\\[pPQECzx]|\(\?[^:!=<P)]*[xU]")
_BRACE = re.compile(r"\\\{|\{\d+(?:,\d*)?\}|\{")

Requirement = frozenset[str]  # at least one of these literals occurs
MAX_REQUIREMENTS = 4  # the key literal plus up to three cheap ``in`` checks


def prefilter_text(lower: str) -> str:
    """The lower-cased message as the literal automaton must see it."""
    return lower.replace("\u017f", "s") if "\u017f" in lower else lower


def _braces_safe(pattern: str) -> bool:
    """Every ``{`` is escaped or a plain ``{m}``/``{m,}``/``{m,n}`` repeat."""
    return all(m.group() != "{" for m in _BRACE.finditer(pattern))


def selectivity(requirement: Requirement) -> tuple[int, int]:
    """Higher is rarer: the longest shortest-literal, then the fewest literals."""
    return (min(map(len, requirement)), -len(requirement))


def _run(chars: list[str], into: list[Requirement]) -> None:
    text = "".join(chars).lower()
    if len(text) >= MIN_LITERAL:
        into.append(frozenset({text}))


def _sequence(items: Any) -> list[Requirement]:
    """Requirements that all hold for a concatenation (a conjunction)."""
    found: list[Requirement] = []
    chars: list[str] = []
    for op, av in items:
        if op is sre.LITERAL and av < 128:
            chars.append(chr(av))
            continue
        _run(chars, found)
        chars = []
        found.extend(_node(op, av))
    _run(chars, found)
    return found


def _node(op: Any, av: Any) -> list[Requirement]:
    if op is sre.SUBPATTERN:
        return _sequence(av[-1])
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
        low, _high, body = av
        return _sequence(body) if low >= 1 else []
    if op is sre.BRANCH:  # one literal from each branch: their union is required
        union: set[str] = set()
        for branch in av[1]:
            found = _sequence(branch)
            if not found:
                return []
            best: Requirement = max(found, key=selectivity)
            union |= best
        return [frozenset(union)]
    if op in (sre.LITERAL, sre.NOT_LITERAL, sre.ANY, sre.IN, sre.AT, sre.CATEGORY):
        return []
    raise _Unsupported(str(op))


def requirements_from_data(doc: object) -> tuple[Requirement, ...] | None:
    """Requirements read back from JSON (lists of lists), or None when not shaped like them.

    The shape ``required_literals`` gives: at most ``MAX_REQUIREMENTS``
    non-empty requirements of lower-cased ASCII literals, none shorter than
    ``MIN_LITERAL``. An empty requirement would match nothing, an upper-case
    literal never, so either means the data is not an analysis.
    """
    if not isinstance(doc, list) or len(doc) > MAX_REQUIREMENTS:
        return None
    out = []
    for requirement in doc:
        if not isinstance(requirement, list) or not requirement:
            return None
        for literal in requirement:
            if (
                not isinstance(literal, str)
                or len(literal) < MIN_LITERAL
                or not literal.isascii()
                or literal != literal.lower()
            ):
                return None
        out.append(frozenset(requirement))
    return tuple(out)


def requirements_to_data(requirements: tuple[Requirement, ...]) -> list[list[str]]:
    """JSON-ready form of an analysis: requirement order kept, literals sorted."""
    return [sorted(r) for r in requirements]


class _Unsupported(Exception):
    """A node type that RE2 rejects or this module does not reason about."""


@lru_cache(maxsize=1 << 17)  # rebuilt on every rule reload; patterns rarely change
def required_literals(pattern: str) -> tuple[Requirement, ...]:
    """Requirements that all hold for any match, most selective first; () if unknown."""
    if _UNSAFE.search(pattern) or not _braces_safe(pattern):
        return ()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = sre_parse.parse(pattern)
        found = _sequence(parsed.data)
    except (re.error, _Unsupported, RecursionError, OverflowError, ValueError):
        return ()
    unique = sorted(set(found), key=selectivity, reverse=True)
    return tuple(unique[:MAX_REQUIREMENTS])
