"""``mutt trap-handle``: the program snmptrapd runs for each trap (``traphandle default``).

snmptrapd writes the trap to the program's stdin in its traphandle format::

    core-rtr-01                                  <- the agent's name (reverse DNS) or <UNKNOWN>
    UDP: [10.1.2.3]:40542->[10.0.0.5]:162        <- the transport address
    .1.3.6.1.2.1.1.3.0 0:0:40:11.01              <- one "OID value" per varbind
    .1.3.6.1.6.3.1.1.4.1.0 .1.3.6.1.4.1.9.9.41.2.0.1
    .1.3.6.1.4.1.9.9.41.1.2.3.1.5.1 "Interface Gi0/1, changed
    state to down"                               <- a quoted value may span lines

Values come without their SNMP type (quick print), so the type is inferred
from the shape of the value where it is unambiguous. OIDs are numeric when
snmptrapd runs with ``-On``; a symbolic trap OID cannot be routed (ingest has
no MIBs) and is refused here with that advice. ``snmpTrapCommunity.0`` is
dropped: a community string is a credential and must not travel in events.

snmptrapd waits for the handler, so everything is bounded by ``timeout``.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import orjson

from functions.ingest.limits import MAX_OID_CHARS, MAX_VARBIND_VALUE_CHARS, MAX_VARBINDS
from functions.ingest.oids import (
    SNMP_TRAP_ADDRESS,
    SNMP_TRAP_COMMUNITY,
    SNMP_TRAP_ENTERPRISE,
    SNMP_TRAP_OID,
    SYS_NAME,
    SYS_UPTIME,
    numeric_oid,
)
from mutt.sources.events import (
    ReceiveClock,
    cloudevent,
    event_id,
    peer_host,
    valid_hostname,
)
from mutt.sources.sender import IngestClient, PostResult
from shared.errors import MuttError
from shared.models import TYPE_TRAP

MAX_INPUT_BYTES = 4 * 1_048_576
SOURCE_TYPE = "snmptrap"

# What snmptrapd prints for these without -On (its bundled MIBs know them).
_SYMBOLIC = {
    "SNMPv2-MIB::sysUpTime.0": SYS_UPTIME,
    "DISMAN-EVENT-MIB::sysUpTimeInstance": SYS_UPTIME,
    "SNMPv2-MIB::sysName.0": SYS_NAME,
    "SNMPv2-MIB::snmpTrapOID.0": SNMP_TRAP_OID,
    "SNMPv2-MIB::snmpTrapEnterprise.0": SNMP_TRAP_ENTERPRISE,
    "SNMP-COMMUNITY-MIB::snmpTrapAddress.0": SNMP_TRAP_ADDRESS,
    "SNMP-COMMUNITY-MIB::snmpTrapCommunity.0": SNMP_TRAP_COMMUNITY,
}
_UNKNOWN_HOSTS = frozenset({"", "<UNKNOWN>", "<unknown>"})

_ADDRESS = re.compile(r"\[([^\]]+)\]:\d+")
_IPV4 = re.compile(
    r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}"
)
_INTEGER = re.compile(r"-?\d{1,20}")
_TIMETICKS = re.compile(r"\d+:\d{1,2}:\d{2}:\d{2}\.\d{2}")
_DOTTED = re.compile(r"\.?\d+(?:\.\d+)+")
_HEX = re.compile(r"(?:[0-9A-F]{2} )+")
_QUOTED_END = re.compile(r'(?<!\\)(?:\\\\)*"\s*$')


class TrapError(MuttError):
    """The trap could not be read or delivered; snmptrapd logs this one line."""


@dataclass(frozen=True, slots=True)
class Varbind:
    oid: str
    type: str | None
    value: str


@dataclass(frozen=True, slots=True)
class Trap:
    """What snmptrapd handed over."""

    hostname: str
    transport: str
    varbinds: tuple[Varbind, ...]


def parse_traphandle(text: str) -> Trap:
    """The traphandle format → ``Trap`` (``TrapError`` when it is not that format)."""
    lines = text.replace("\r\n", "\n").split("\n")
    if len(lines) < 2 or not lines[1].strip():
        raise TrapError("stdin is not snmptrapd traphandle input (hostname, transport, varbinds)")
    varbinds: list[Varbind] = []
    index = 2
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line.strip():
            continue
        oid, _, value = line.strip().partition(" ")
        if value.startswith('"'):
            while not _closed(value) and index < len(lines):
                value += "\n" + lines[index]
                index += 1
        varbinds.append(_varbind(oid, value))
    return Trap(lines[0].strip(), lines[1].strip(), tuple(varbinds))


def _closed(value: str) -> bool:
    """Whether a value that opened with a quote has its closing quote (not an escaped one)."""
    return bool(_QUOTED_END.search(value, 1))


def _varbind(oid_text: str, value: str) -> Varbind:
    oid = _SYMBOLIC.get(oid_text) or numeric_oid(oid_text) or oid_text
    value = value.strip()
    if value.startswith('"') and _closed(value):
        inner = value[1 : value.rstrip().rfind('"')]
        inner = re.sub(r"\\([\"\\])", r"\1", inner)
        if _HEX.fullmatch(inner):
            return Varbind(oid, "Hex-STRING", inner.rstrip())
        return Varbind(oid, "STRING", inner)
    kind = _infer_type(value)
    return Varbind(oid, kind, value.removeprefix(".") if kind == "OID" else value)


def _infer_type(value: str) -> str | None:
    if _TIMETICKS.fullmatch(value):
        return "Timeticks"
    if _INTEGER.fullmatch(value):
        return "INTEGER"
    if _IPV4.fullmatch(value):
        return "IpAddress"
    if _DOTTED.fullmatch(value):
        return "OID"
    return None


def transport_peer(trap: Trap) -> str | None:
    """The address the trap came from (``UDP: [10.1.2.3]:40542->...``)."""
    found = _ADDRESS.search(trap.transport)
    if found is not None:
        return peer_host(found.group(1))
    ipv4 = _IPV4.search(trap.transport)
    return ipv4.group() if ipv4 else None


def agent_address(trap: Trap) -> str | None:
    """The agent: ``snmpTrapAddress.0`` (SNMPv1 agent-addr, or behind a proxy / NAT),
    else the transport's sender."""
    for varbind in trap.varbinds:
        if varbind.oid == SNMP_TRAP_ADDRESS and varbind.value:
            return varbind.value
    return transport_peer(trap)


def trap_data(trap: Trap) -> dict[str, object]:
    """The data of an ``io.mutt.snmp.trap.v1`` event."""
    trap_oid = next((v.value for v in trap.varbinds if v.oid == SNMP_TRAP_OID), None)
    if not trap_oid:
        raise TrapError("the trap has no snmpTrapOID.0 varbind (1.3.6.1.6.3.1.1.4.1.0)")
    numeric = numeric_oid(trap_oid)
    if numeric is None or len(numeric) > MAX_OID_CHARS:
        raise TrapError(
            f"trap OID {trap_oid[:80]!r} is not numeric: run snmptrapd with -On "
            "(ingest routes on numeric OIDs and has no MIBs)"
        )
    address = agent_address(trap)
    sys_name = next((v.value for v in trap.varbinds if v.oid == SYS_NAME), None)
    # snmptrapd's first line names the transport's sender: the agent only when the
    # trap did not come through a proxy or NAT (snmpTrapAddress.0 says otherwise).
    # With -n, snmptrapd repeats the transport address there instead of a name.
    known = trap.hostname not in _UNKNOWN_HOSTS and trap.hostname != trap.transport
    named = known and address == transport_peer(trap)
    hostname = next(
        (name for name in (sys_name, trap.hostname if named else None) if valid_hostname(name)),
        address,
    )
    if not hostname or not valid_hostname(hostname):
        raise TrapError(f"no usable agent name or address in {trap.transport[:120]!r}")
    kept = [v for v in trap.varbinds if v.oid != SNMP_TRAP_COMMUNITY and _storable(v.oid)]
    data: dict[str, object] = {
        "hostname": hostname,
        "trap_oid": numeric,
        "varbinds": [_varbind_data(v) for v in kept[:MAX_VARBINDS]],
        "source_type": SOURCE_TYPE,
        "transport": trap.transport[:256],
    }
    if address:
        data["agent_address"] = address
    if known and trap.hostname != hostname:
        data["snmptrapd_hostname"] = trap.hostname[:255]
    if len(kept) > MAX_VARBINDS:
        data["varbinds_truncated"] = len(kept) - MAX_VARBINDS
    return data


def _storable(oid: str) -> bool:
    return 0 < len(oid) <= MAX_OID_CHARS and oid.isprintable() and " " not in oid


def _varbind_data(varbind: Varbind) -> dict[str, str | None]:
    value = varbind.value.replace("\x00", "\ufffd")[:MAX_VARBIND_VALUE_CHARS]
    return {"oid": varbind.oid, "type": varbind.type, "value": value}


def trap_event(raw: bytes, *, source: str, received_ns: int | None = None) -> dict[str, object]:
    """snmptrapd's stdin → one ``io.mutt.snmp.trap.v1`` CloudEvent."""
    text = raw.decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    trap = parse_traphandle(text)
    data = trap_data(trap)
    ns = ReceiveClock().now_ns() if received_ns is None else received_ns
    peer = str(data.get("agent_address") or "")
    return cloudevent(TYPE_TRAP, source, event_id(source, peer, ns, raw), ns, data)


def deliver(client: IngestClient, event: dict[str, object], timeout: float) -> PostResult:
    """POST one event, retrying on 429 / 503 / failures until ``timeout`` is spent."""
    body = orjson.dumps(event)
    deadline = time.monotonic() + timeout
    delay = 0.2
    while True:
        left = deadline - time.monotonic()
        result = client.post([body], "single", max(0.2, left))
        if result.kind == "done":
            if result.rejected:
                raise TrapError(f"ingest refused the trap: {result.detail}")
            return result
        if result.kind != "retry":
            raise TrapError(f"ingest refused the trap: {result.detail}")
        wait = result.delay if result.delay is not None else delay
        left = deadline - time.monotonic()
        if wait >= left:
            raise TrapError(f"ingest did not take the trap within {timeout:g}s: {result.detail}")
        time.sleep(wait)
        delay = min(delay * 2, 2.0)
