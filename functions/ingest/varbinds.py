"""SNMP varbinds: ``[{"oid", "type"?, "value"}]``, bounded and storable.

A varbind OID is normalized like a trap OID when it is numeric (or resolvable),
but a symbolic one is kept as sent: rules match on the trap OID, and refusing
a whole trap because snmptrapd printed ``IF-MIB::ifIndex.2`` would lose it.
"""

from __future__ import annotations

import math

from functions.ingest.errors import InputError, json_type, preview
from functions.ingest.limits import (
    MAX_OID_CHARS,
    MAX_TRAP_SUMMARY_CHARS,
    MAX_VARBIND_TYPE_CHARS,
    MAX_VARBIND_VALUE_CHARS,
    MAX_VARBINDS,
)
from functions.ingest.normalize import check_string, check_text
from functions.ingest.oids import WELL_KNOWN_TRAPS, numeric_oid

VarbindData = dict[str, str | None]

_KEYS = frozenset({"oid", "type", "value"})
_TRAP_NAMES = {oid: name for name, oid in WELL_KNOWN_TRAPS.items()}


def parse_varbinds(value: object, field: str = "varbinds") -> list[VarbindData]:
    """Validated varbinds as dicts ready for ``Varbind``; absent → ``[]``."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise InputError(field, f"must be an array of objects, not {json_type(value)}")
    if len(value) > MAX_VARBINDS:
        raise InputError(field, f"has {len(value)} entries, the limit is {MAX_VARBINDS}")
    return [_varbind(item, f"{field}[{position}]") for position, item in enumerate(value)]


def _varbind(item: object, field: str) -> VarbindData:
    if not isinstance(item, dict):
        raise InputError(field, f"must be an object with oid and value, not {json_type(item)}")
    unknown = item.keys() - _KEYS
    if unknown:
        raise InputError(field, f"unknown key {preview(min(unknown))} (allowed: oid, type, value)")
    return {
        "oid": _varbind_oid(item.get("oid"), f"{field}.oid"),
        "type": check_text(item.get("type"), f"{field}.type", MAX_VARBIND_TYPE_CHARS),
        "value": _varbind_value(item.get("value"), f"{field}.value"),
    }


def _varbind_oid(value: object, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(field, "is required (a non-empty string)")
    oid = numeric_oid(value) if len(value) <= MAX_OID_CHARS + 1 else None
    if oid is not None and len(oid) <= MAX_OID_CHARS:
        return oid
    text = check_string(value.strip(), field, MAX_OID_CHARS)
    if not text.isprintable() or " " in text:
        raise InputError(field, "must not contain whitespace or control characters")
    return text


def _varbind_value(value: object, field: str) -> str:
    """SNMP values arrive typed; the model carries their text."""
    if value is None:
        return ""
    if isinstance(value, str):
        return check_string(value, field, MAX_VARBIND_VALUE_CHARS)
    if isinstance(value, int) and not isinstance(value, bool):
        if value.bit_length() > 64:
            raise InputError(field, "number is out of the 64-bit range")
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    raise InputError(field, f"must be a string or a number, not {json_type(value)}")


def trap_message(trap_oid: str | None, varbinds: list[VarbindData]) -> str:
    """A readable one-line message for a trap sent without one (cut at 1024 chars)."""
    name = _TRAP_NAMES.get(trap_oid or "")
    head = f"SNMP trap {trap_oid or '(no OID)'}" + (f" ({name})" if name else "")
    if not varbinds:
        return head
    pieces: list[str] = []
    size = len(head)
    for varbind in varbinds:  # stop early: 1024 values of 8 KiB must not be joined
        pieces.append(f"{varbind['oid']}={varbind['value']}")
        size += len(pieces[-1]) + 2
        if size > MAX_TRAP_SUMMARY_CHARS:
            break
    text = f"{head}: {', '.join(pieces)}"
    if len(text) > MAX_TRAP_SUMMARY_CHARS:
        text = text[: MAX_TRAP_SUMMARY_CHARS - 3] + "..."
    return text
