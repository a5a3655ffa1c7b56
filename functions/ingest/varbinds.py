"""SNMP varbinds, in the forms senders use, bounded and storable.

Three forms are accepted, all giving the same varbinds (in the sender's order):

- objects: ``[{"oid": "1.3.6.1.2.1.1.5.0", "type": "STRING", "value": "r1"}]``
  (``type`` optional), what ``mutt trap-handle`` sends;
- pairs: ``[["1.3.6.1.2.1.1.5.0", "r1"]]``, what many scripts and NMS exports send;
- a map: ``{"1.3.6.1.2.1.1.5.0": "r1"}`` (JSON keeps the order).

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
from functions.ingest.oids import HOUSEKEEPING_VARBINDS, WELL_KNOWN_TRAPS, numeric_oid

VarbindData = dict[str, str | None]

_KEYS = frozenset({"oid", "type", "value"})
_TRAP_NAMES = {oid: name for name, oid in WELL_KNOWN_TRAPS.items()}
_FORMS = "an object with oid and value, or an [oid, value] pair"


def parse_varbinds(value: object, field: str = "varbinds") -> list[VarbindData]:
    """Validated varbinds as dicts ready for ``Varbind``; absent → ``[]``."""
    if value is None:
        return []
    if isinstance(value, dict):
        _check_count(len(value), field)
        return [_map_entry(oid, item, f"{field}[{preview(oid)}]") for oid, item in value.items()]
    if not isinstance(value, list):
        raise InputError(
            field,
            f"must be an array of varbinds or an object of OID: value, not {json_type(value)}",
        )
    _check_count(len(value), field)
    return [_item(item, f"{field}[{position}]") for position, item in enumerate(value)]


def _check_count(count: int, field: str) -> None:
    if count > MAX_VARBINDS:
        raise InputError(field, f"has {count} entries, the limit is {MAX_VARBINDS}")


def _item(item: object, field: str) -> VarbindData:
    """One element of the array forms: an object or an ``[oid, value]`` pair."""
    if isinstance(item, dict):
        unknown = item.keys() - _KEYS
        if unknown:
            raise InputError(
                field, f"unknown key {preview(min(unknown))} (allowed: oid, type, value)"
            )
        return {
            "oid": _varbind_oid(item.get("oid"), f"{field}.oid"),
            "type": check_text(item.get("type"), f"{field}.type", MAX_VARBIND_TYPE_CHARS),
            "value": _varbind_value(item.get("value"), f"{field}.value"),
        }
    if isinstance(item, list):
        if len(item) != 2:
            raise InputError(field, f"must be an [oid, value] pair, not {len(item)} elements")
        return {
            "oid": _varbind_oid(item[0], f"{field}[0]"),
            "type": None,
            "value": _varbind_value(item[1], f"{field}[1]"),
        }
    raise InputError(field, f"must be {_FORMS}, not {json_type(item)}")


def _map_entry(oid: str, value: object, field: str) -> VarbindData:
    """``{oid: value}``: the key is the OID (JSON keys are always strings)."""
    return {"oid": _varbind_oid(oid, field), "type": None, "value": _varbind_value(value, field)}


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
    """A readable one-line message for a trap sent without one (cut at 1024 chars).

    It is also the alert's summary, so it names the trap and shows what the
    trap says: the varbinds every notification carries (sysUpTime.0,
    snmpTrapOID.0, snmpTrapEnterprise.0, snmpTrapAddress.0) say nothing about
    the problem and are left out; they stay in ``varbinds``.
    """
    name = _TRAP_NAMES.get(trap_oid or "")
    head = f"SNMP trap {trap_oid or '(no OID)'}" + (f" ({name})" if name else "")
    meaningful = [v for v in varbinds if v["oid"] not in HOUSEKEEPING_VARBINDS]
    if not meaningful:
        return head
    pieces: list[str] = []
    size = len(head)
    for varbind in meaningful:  # stop early: 1024 values of 8 KiB must not be joined
        pieces.append(f"{varbind['oid']}={varbind['value']}")
        size += len(pieces[-1]) + 2
        if size > MAX_TRAP_SUMMARY_CHARS:
            break
    text = f"{head}: {', '.join(pieces)}"
    if len(text) > MAX_TRAP_SUMMARY_CHARS:
        text = text[: MAX_TRAP_SUMMARY_CHARS - 3] + "..."
    return text
