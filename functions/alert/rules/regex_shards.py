"""Fallback regex index: RE2's FilteredRE2 (``re2.Filter``), sharded in rank order.

Used for the regexes ``literals.required_literals`` finds no literal for
(RE2-only syntax such as ``[[:digit:]]``, or none at all such as ``^\\S+$``),
so in a typical rule set it holds few patterns and a single shard.

FilteredRE2 extracts the literal atoms each pattern requires, scans the
message once for all atoms with an RE2 set, and runs only the patterns
whose atoms are present (plus the "unfiltered" ones that require none, such
as ``\\d+``; the binding always returns those as candidates, so they are
run on every event). ``Match`` returns exact matches, not just potentials.

Shards: the binding compiles its atom set with RE2's default 8 MiB budget
and cannot be told otherwise, so one Filter of 10k patterns fails to
compile (docs/reference/building-blocks.md §4). Patterns are cut into shards of at most
``shard_size`` in rank order; a shard that still fails is halved. Rank
order also lets ``best`` stop at the first shard that cannot beat the
current bound, and at the first shard that yields a match.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import re2

from .candidates import Candidate, accepts
from .regex import error_text, regex_options
from .semantics import PreparedEvent

DEFAULT_SHARD_SIZE = 2000


@dataclass(frozen=True, slots=True)
class _Shard:
    first_rank: int
    filter: Any
    candidates: tuple[Candidate, ...]


class RegexShards:
    """Regex rules in FilteredRE2 shards; ``rejected`` lists what RE2 refused."""

    def __init__(
        self, items: Sequence[tuple[str, Candidate]], shard_size: int = DEFAULT_SHARD_SIZE
    ) -> None:
        if shard_size < 1:
            raise ValueError("shard_size must be at least 1")
        ordered = sorted(items, key=lambda item: item[1].rank)
        self.rejected: list[tuple[Candidate, str]] = []
        self._shards: list[_Shard] = []
        for start in range(0, len(ordered), shard_size):
            self._build(ordered[start : start + shard_size])
        self.size = sum(len(shard.candidates) for shard in self._shards)
        self.unfiltered = sum(
            len(shard.filter.Match(b"", potential=True) or ()) for shard in self._shards
        )

    @property
    def shards(self) -> int:
        """How many Filters a missed event is scanned by."""
        return len(self._shards)

    def _build(self, items: Sequence[tuple[str, Candidate]]) -> None:
        options = regex_options()
        kept: list[tuple[str, Candidate]] = []
        flt = re2.Filter()
        for pattern, candidate in items:
            try:
                flt.Add(pattern, options)
            except re2.error as exc:
                why = f"RE2 Filter refused the pattern: {error_text(exc)}"
                self.rejected.append((candidate, why))
                continue
            kept.append((pattern, candidate))
        if not kept:
            return
        try:
            flt.Compile()
        except re2.error as exc:
            if len(kept) == 1:
                why = f"RE2 Filter could not compile it: {error_text(exc)}"
                self.rejected.append((kept[0][1], why))
                return
            half = len(kept) // 2
            self._build(kept[:half])
            self._build(kept[half:])
            return
        candidates = tuple(candidate for _, candidate in kept)
        self._shards.append(_Shard(candidates[0].rank, flt, candidates))

    def best(self, event: PreparedEvent, bound: int) -> int:
        """Lowest accepted rank below ``bound`` among regexes matching the message."""
        data: bytes | None = None
        for shard in self._shards:
            if shard.first_rank >= bound:
                break
            if data is None:
                data = event.data
            matches = shard.filter.Match(data)
            if not matches:
                continue
            candidates = shard.candidates
            for index in matches:  # ascending index = ascending rank
                candidate: Candidate = candidates[index]
                if candidate.rank >= bound:
                    break
                if accepts(candidate, event):
                    return candidate.rank
        return bound
