"""A sender's severity → syslog level, X.733 alarm severity, or "could not read".

Senders speak two vocabularies: syslog's eight levels (RFC 5424) and the
perceived severities of ITU-T X.733 that SNMP alarm MIBs and NMS exports use
(critical, major, minor, warning, indeterminate, cleared). Both are read, in
any case; X.733 words are mapped onto syslog so rules, routes and sinks see
one scale, and the word itself is kept as ``Event.perceived_severity``:

==============  ===================  ========================================
X.733           syslog level         note
==============  ===================  ========================================
critical        2 critical           the same word in syslog
major           3 error
minor           4 warning
warning         4 warning            the same word in syslog
indeterminate   none (the default)   an alarm whose severity the sender did not know
cleared, clear  6 info               ends the alarm: resolves, never raises
==============  ===================  ========================================

A word both vocabularies have keeps its one level, so ``"Warning"`` means
the same everywhere (the reference MUTT v2.5 events send syslog names with
their trap OIDs). Whether it is *also* an X.733 alarm depends on the event:
on a trap (an event with a trap OID) it is, so a later "cleared" can end it;
on syslog and other events it is plain syslog. The X.733-only words (major,
minor, indeterminate, cleared) are X.733 on every event.

A value that is neither is never a reason to refuse an event: the reading
says so (``unknown``) and the caller keeps the raw value, leaves the severity
unset (the alert stage then uses its default, warning) and counts it.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

from functions.ingest.errors import json_type
from shared.models import SEVERITY_ALIASES, PerceivedSeverity, Severity

X733: dict[str, tuple[Severity | None, PerceivedSeverity]] = {
    "critical": (Severity.CRITICAL, "critical"),
    "major": (Severity.ERROR, "major"),
    "minor": (Severity.WARNING, "minor"),
    "warning": (Severity.WARNING, "warning"),
    "indeterminate": (None, "indeterminate"),
    "cleared": (Severity.INFO, "cleared"),
    "clear": (Severity.INFO, "cleared"),  # Moogsoft's and ServiceNow's word for it
}
# Words only X.733 has: an X.733 alarm (or clear) on every event, not only on traps.
_X733_ONLY = frozenset(X733) - frozenset(SEVERITY_ALIASES)
_MAX_WORD_CHARS = 32  # longer strings are no severity word: not worth a cache slot
_RAW_CHARS = 128  # what is kept of an unreadable string


class Reading(NamedTuple):
    """What a severity value says."""

    severity: Severity | None
    perceived: PerceivedSeverity | None = None
    unknown: bool = False  # a value was sent but could not be read


_ABSENT = Reading(None)
_UNKNOWN = Reading(None, None, True)


def read_severity(value: object, *, trap: bool = False) -> Reading:
    """Read ``value`` (0-7, a syslog name or an X.733 word, any case); never raises."""
    if value is None or value == "":
        return _ABSENT
    if isinstance(value, bool):
        return _UNKNOWN
    if isinstance(value, int):
        return Reading(Severity(value)) if 0 <= value <= 7 else _UNKNOWN
    if isinstance(value, str) and len(value) <= _MAX_WORD_CHARS:
        return _word(value, trap)
    return _UNKNOWN


@lru_cache(maxsize=512)
def _word(value: str, trap: bool) -> Reading:
    """Senders repeat a handful of spellings: their reading is cached (bounded)."""
    text = value.strip().lower()
    if len(text) == 1 and "0" <= text <= "7":
        return Reading(Severity(int(text)))
    if text in X733 and (trap or text in _X733_ONLY):
        return Reading(*X733[text])
    found = SEVERITY_ALIASES.get(text)
    return Reading(found) if found is not None else _UNKNOWN


def raw_value(value: object) -> object:
    """What is kept of an unreadable severity: the value, made safe to store.

    It travels as an attribute (orjson, PostgreSQL jsonb), so a string loses
    NULs and unpaired surrogates and is cut at 128 characters; a structure
    is replaced by the name of its type. The event must not be refused for it.
    """
    if isinstance(value, str):
        text = value[:_RAW_CHARS].replace("\x00", "\ufffd")
        return text.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**64 else "a number out of the 64-bit range"
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    return f"a JSON {json_type(value)}"
