"""Trap OIDs in the one form rules match on: numeric, dotted, no leading dot.

Symbolic names need the sender's MIBs to resolve, which ingest does not have,
so they are refused (configure ``snmptrapd -On``) except the generic traps of
RFC 3418 / RFC 2863 and net-snmp's common numeric prefixes (``iso.3.6...``,
``SNMPv2-SMI::enterprises.9...``), which resolve without MIBs.
"""

from __future__ import annotations

import re
from functools import lru_cache

from functions.ingest.errors import InputError, json_type, preview
from functions.ingest.limits import MAX_OID_CHARS

_CANONICAL = re.compile(r"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*")
_NUMERIC = re.compile(r"[0-9]+(?:\.[0-9]+)*")

WELL_KNOWN_TRAPS: dict[str, str] = {
    "coldStart": "1.3.6.1.6.3.1.1.5.1",
    "warmStart": "1.3.6.1.6.3.1.1.5.2",
    "linkDown": "1.3.6.1.6.3.1.1.5.3",
    "linkUp": "1.3.6.1.6.3.1.1.5.4",
    "authenticationFailure": "1.3.6.1.6.3.1.1.5.5",
    "egpNeighborLoss": "1.3.6.1.6.3.1.1.5.6",
}
_WELL_KNOWN_MODULES = frozenset({"SNMPv2-MIB", "IF-MIB", "RFC1213-MIB", "RFC1215-MIB"})

# Varbinds every SNMPv2 notification carries (RFC 3416 section 4.2.6, RFC 3584):
# they describe the delivery, not the problem.
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
SYS_NAME = "1.3.6.1.2.1.1.5.0"
SNMP_TRAP_OID = "1.3.6.1.6.3.1.1.4.1.0"
SNMP_TRAP_ENTERPRISE = "1.3.6.1.6.3.1.1.4.3.0"
SNMP_TRAP_ADDRESS = "1.3.6.1.6.3.18.1.3.0"
SNMP_TRAP_COMMUNITY = "1.3.6.1.6.3.18.1.4.0"
HOUSEKEEPING_VARBINDS = frozenset(
    {SYS_UPTIME, SNMP_TRAP_OID, SNMP_TRAP_ENTERPRISE, SNMP_TRAP_ADDRESS, SNMP_TRAP_COMMUNITY}
)

# Symbolic prefixes net-snmp prints for OIDs it has no MIB for.
_PREFIXES: tuple[tuple[str, str], ...] = (
    ("iso.", "1."),
    ("SNMPv2-SMI::enterprises.", "1.3.6.1.4.1."),
    ("SNMPv2-SMI::mib-2.", "1.3.6.1.2.1."),
    ("SNMPv2-SMI::internet.", "1.3.6.1."),
    ("SNMPv2-SMI::experimental.", "1.3.6.1.3."),
    ("SNMPv2-SMI::private.", "1.3.6.1.4."),
)


def normalize_oid(value: object, field: str = "trap_oid") -> str | None:
    """``.1.3.6.1...``, ``1.3.06.1``, ``iso.3.6.1`` → ``1.3.6.1``; absent → ``None``."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InputError(field, f"must be a string, not {json_type(value)}")
    if len(value) > MAX_OID_CHARS + 1:  # +1: a leading dot is allowed
        raise InputError(field, f"is longer than {MAX_OID_CHARS} characters")
    return _normalize(value, field)


@lru_cache(maxsize=4096)
def _normalize(value: str, field: str) -> str:
    """Cached: a site sends a few hundred distinct trap OIDs, over and over."""
    oid = value[1:] if value.startswith(".") else value
    if _CANONICAL.fullmatch(oid):
        return oid
    return _slow_path(value, field)


def numeric_oid(value: str) -> str | None:
    """The canonical numeric form of ``value``, or ``None`` if it is symbolic."""
    text = value.strip()
    if text.startswith("."):
        text = text[1:]
    if _CANONICAL.fullmatch(text):
        return text
    for prefix, replacement in _PREFIXES:
        if text.startswith(prefix):
            text = replacement + text[len(prefix) :]
            break
    if _NUMERIC.fullmatch(text):
        return ".".join(str(int(arc)) for arc in text.split("."))  # drop leading zeros
    module, _, name = text.rpartition("::")
    if name in WELL_KNOWN_TRAPS and (not module or module in _WELL_KNOWN_MODULES):
        return WELL_KNOWN_TRAPS[name]
    return None


def _slow_path(value: str, field: str) -> str:
    oid = numeric_oid(value)
    if oid is None:
        raise InputError(
            field,
            f"{preview(value)} is not a numeric OID: symbolic names cannot be resolved "
            "at ingest, send numeric OIDs (snmptrapd -On)",
        )
    if len(oid) > MAX_OID_CHARS:
        raise InputError(field, f"is longer than {MAX_OID_CHARS} characters")
    return oid
