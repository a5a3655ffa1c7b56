"""Numeric dotted OIDs: one normal form and whole-arc prefix tests.

v2.5 compared OIDs with ``str.startswith``, so ``1.3.6.1.4.1.9`` matched
``1.3.6.1.4.1.99`` and ``.1.3`` never matched ``1.3`` (docs/reference/mutt-v25.md §3,
item 5). Here every OID is reduced to arcs without leading dots and a
prefix must end on an arc boundary.
"""

from __future__ import annotations

import re

_OID = re.compile(r"[0-9]+(?:\.[0-9]+)*")


def normalize_oid(text: str) -> str:
    """Strip blanks and leading dots; raise ``ValueError`` unless numeric dotted."""
    oid = text.strip().lstrip(".")
    if not _OID.fullmatch(oid):
        raise ValueError(
            f"must be a numeric dotted OID such as 1.3.6.1.4.1.9 "
            f"(a leading dot is allowed, wildcards are not), got {text[:80]!r}"
        )
    return oid


def event_oid(text: str | None) -> str | None:
    """The event side of the comparison: leading dots ignored, empty means none."""
    if not text:
        return None
    oid = text.lstrip(".")
    return oid or None


def has_prefix(oid: str, prefix: str) -> bool:
    """True when ``prefix`` equals ``oid`` or is an ancestor of it on whole arcs."""
    return oid == prefix or (oid.startswith(prefix) and oid[len(prefix)] == ".")


def prefixes(oid: str) -> frozenset[str]:
    """Every whole-arc prefix of ``oid`` (itself included): O(1) ancestor tests."""
    found = {oid}
    at = oid.find(".")
    while at != -1:
        found.add(oid[:at])
        at = oid.find(".", at + 1)
    return frozenset(found)
