"""One Aho-Corasick pass per event for every literal any index looks for.

The contains index (needles) and the regex prefilter (required literals)
used to own an automaton each, so an event paid two scans of its message.
Both now register their strings here and get a number per distinct string;
``present`` scans once and hands both indexes the set of numbers found.
The automaton is ``ahocorasick_rs`` (Rust's aho-corasick crate): on
240-byte messages it scans 2-3x faster than pyahocorasick and grows less
with the number of patterns (docs/performance.md).

Needles are looked for in the lower-cased message, regex literals in
``prefilter_text`` of it; the two differ only when the message holds a
LONG S (U+017F), and then the scan runs once on each (the caller passes
both texts; the same object twice in the common case).
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any

from ahocorasick_rs import AhoCorasick

_NUMBER = itemgetter(0)  # (pattern number, start, end) -> pattern number
NOTHING: frozenset[int] = frozenset()


class LiteralScan:
    """Strings -> numbers while indexes are built; then ``present`` per event."""

    def __init__(self) -> None:
        self._numbers: dict[str, int] = {}
        self._automaton: Any = None

    def number(self, literal: str) -> int:
        """The number of ``literal`` (the same for every index that registers it)."""
        if self._automaton is not None:
            raise RuntimeError("LiteralScan is frozen: register every literal before scanning")
        return self._numbers.setdefault(literal, len(self._numbers))

    def freeze(self) -> None:
        """Build the automaton; called once, after every index has registered."""
        if self._automaton is None and self._numbers:
            self._automaton = AhoCorasick(list(self._numbers))

    def present(
        self, lower: str, text: str
    ) -> tuple[frozenset[int] | set[int], frozenset[int] | set[int]]:
        """(numbers found in ``lower``, numbers found in ``text``, its prefilter text)."""
        automaton = self._automaton
        if automaton is None:
            return NOTHING, NOTHING
        found = set(map(_NUMBER, automaton.find_matches_as_indexes(lower, overlapping=True)))
        if text is lower:
            return found, found
        return found, set(map(_NUMBER, automaton.find_matches_as_indexes(text, overlapping=True)))
