"""The snmptrapd traphandle reader: real snmptrapd output, edge cases, random input."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.ingest.cloudevent_data import parse_cloudevent_data
from mutt.sources.trap_handle import (
    TrapError,
    parse_traphandle,
    trap_data,
    trap_event,
)
from shared.models import TYPE_TRAP, Event, event_id_for
from tests.support.sources import source_command

DATA = Path(__file__).parent / "data"
FUZZ = settings(
    max_examples=int(os.environ.get("MUTT_FUZZ_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
NS = 1_737_374_400_000_000_000


def ingested(raw: bytes) -> Event:
    ce = trap_event(raw, source="/mutt/snmptrapd/test", received_ns=NS)
    return parse_cloudevent_data(
        ce["type"],
        ce["data"],
        source=ce["source"],
        event_id=ce["id"],
        time=ce["time"],
        received_at=datetime.fromtimestamp(NS / 1e9, UTC),
    )


def varbinds(data: dict[str, Any]) -> dict[str, tuple[str | None, str]]:
    return {v["oid"]: (v["type"], v["value"]) for v in data["varbinds"]}


def test_a_v2c_trap_from_snmptrapd() -> None:
    raw = (DATA / "traphandle_v2c.txt").read_bytes()
    data = trap_data(parse_traphandle(raw.decode()))
    assert data["hostname"] == "core-rtr-01"  # sysName.0 beats snmptrapd's reverse DNS
    assert data["trap_oid"] == "1.3.6.1.4.1.9.9.41.2.0.1"
    assert data["agent_address"] == "127.0.0.1"
    assert data["snmptrapd_hostname"] == "localhost"
    assert varbinds(data) == {
        "1.3.6.1.2.1.1.3.0": ("Timeticks", "0:0:40:11.01"),
        "1.3.6.1.6.3.1.1.4.1.0": ("OID", "1.3.6.1.4.1.9.9.41.2.0.1"),
        "1.3.6.1.4.1.9.9.41.1.2.3.1.2.1": ("STRING", "LINK"),
        "1.3.6.1.4.1.9.9.41.1.2.3.1.5.1": ("STRING", "Interface Gi0/1, changed state to down"),
        "1.3.6.1.2.1.1.5.0": ("STRING", "core-rtr-01"),
        "1.3.6.1.4.1.9.9.41.1.2.3.1.3.1": ("INTEGER", "4"),
        "1.3.6.1.2.1.4.20.1.1": ("IpAddress", "10.1.2.3"),
        "1.3.6.1.4.1.1.1": ("Hex-STRING", "DE AD BE EF"),
        "1.3.6.1.4.1.1.2": ("OID", "1.3.6.1.4.1.9"),
        "1.3.6.1.4.1.1.3": ("Timeticks", "0:0:02:03.45"),
        "1.3.6.1.4.1.1.4": ("STRING", "multi\nline"),
    }
    event = ingested(raw)
    assert event.trap_oid == "1.3.6.1.4.1.9.9.41.2.0.1"
    assert event.hostname == "core-rtr-01"
    assert len(event.varbinds) == 11
    assert event.message.startswith(
        "SNMP trap 1.3.6.1.4.1.9.9.41.2.0.1: 1.3.6.1.4.1.9.9.41.1.2.3.1.2.1=LINK, "
        "1.3.6.1.4.1.9.9.41.1.2.3.1.5.1=Interface Gi0/1, changed state to down, "
    )
    # sysUpTime.0 and snmpTrapOID.0 describe the delivery: kept, but not in the message
    assert "1.3.6.1.2.1.1.3.0" not in event.message
    assert "1.3.6.1.6.3.1.1.4.1.0" not in event.message


def test_a_v1_trap_names_its_agent_and_drops_the_community() -> None:
    raw = (DATA / "traphandle_v1.txt").read_bytes()
    data = trap_data(parse_traphandle(raw.decode()))
    # The agent-addr (10.9.8.7) is not the transport's sender that snmptrapd named.
    assert (data["hostname"], data["agent_address"]) == ("10.9.8.7", "10.9.8.7")
    assert data["trap_oid"] == "1.3.6.1.4.1.9.0.17"
    assert "1.3.6.1.6.3.18.1.4.0" not in varbinds(data)
    assert "public" not in str(data)


def test_with_n_snmptrapd_repeats_the_transport_and_the_address_is_the_hostname() -> None:
    raw = (DATA / "traphandle_numeric.txt").read_bytes()
    data = trap_data(parse_traphandle(raw.decode()))
    assert (data["hostname"], data["agent_address"]) == ("127.0.0.1", "127.0.0.1")
    assert "snmptrapd_hostname" not in data


def trap(*lines: str, host: str = "<UNKNOWN>", transport: str = "UDP: [10.0.0.7]:4000") -> bytes:
    return "\n".join([host, transport, *lines]).encode() + b"\n"


LINK_DOWN = ".1.3.6.1.6.3.1.1.4.1.0 .1.3.6.1.6.3.1.1.5.3"


def test_unknown_hostname_means_the_agent_address() -> None:
    assert ingested(trap(LINK_DOWN)).hostname == "10.0.0.7"
    v6 = trap(LINK_DOWN, transport="UDP/IPv6: [2001:db8::7]:4000->[::1]:162")
    assert ingested(v6).hostname == "2001:db8::7"
    assert ingested(trap(LINK_DOWN, host="edge-fw-02")).hostname == "edge-fw-02"


def test_symbolic_names_for_well_known_varbinds_work_without_on() -> None:
    raw = trap(
        "DISMAN-EVENT-MIB::sysUpTimeInstance 0:0:00:05.00",
        "SNMPv2-MIB::snmpTrapOID.0 IF-MIB::linkDown",
        'SNMPv2-MIB::sysName.0 "sw-01"',
    )
    event = ingested(raw)
    assert (event.trap_oid, event.hostname) == ("1.3.6.1.6.3.1.1.5.3", "sw-01")


def test_escaped_quotes_inside_strings() -> None:
    data = trap_data(
        parse_traphandle(trap(LINK_DOWN, '.1.3.6.1.4.1.1 "say \\"hi\\"\nand bye"').decode())
    )
    assert varbinds(data)["1.3.6.1.4.1.1"] == ("STRING", 'say "hi"\nand bye')


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"", "not snmptrapd traphandle input"),
        (b"host-only\n", "not snmptrapd traphandle input"),
        (trap(".1.3.6.1.2.1.1.3.0 5"), "no snmpTrapOID.0"),
        (trap(".1.3.6.1.6.3.1.1.4.1.0 CISCO-MIB::ciscoThing"), "run snmptrapd with -On"),
    ],
)
def test_what_cannot_be_a_trap_is_one_clear_error(raw: bytes, problem: str) -> None:
    with pytest.raises(TrapError, match=problem):
        trap_event(raw, source="/s")


def test_the_event_is_a_trap_cloudevent_with_a_deterministic_id() -> None:
    raw = trap(LINK_DOWN)
    one = trap_event(raw, source="/s", received_ns=NS)
    assert one == trap_event(raw, source="/s", received_ns=NS)
    assert one["type"] == TYPE_TRAP and one["source"] == "/s"
    assert one["id"] != trap_event(raw, source="/s", received_ns=NS + 1)["id"]


@FUZZ
@given(
    st.text(max_size=400)
    | st.lists(
        st.sampled_from(
            [
                LINK_DOWN,
                '.1.3.6.1.2.1.1.5.0 "x y"',
                '.1.3.6.1.4.1.1 "unterminated',
                ".1.3.6.1.4.1.2 ",
                "\x00 \x01",
                ".1.3.6.1.6.3.18.1.3.0 300.1.1.1",
                "UDP: [::ffff:1.2.3.4]:5",
            ]
        )
        | st.text(max_size=40),
        max_size=8,
    ).map("\n".join)
)
def test_random_input_is_an_event_ingest_accepts_or_a_trap_error(text: str) -> None:
    raw = text.encode("utf-8", "replace")
    try:
        ce = trap_event(raw, source="/mutt/snmptrapd/test", received_ns=NS)
    except TrapError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    event = ingested(raw)
    assert event.trap_oid
    assert event.event_id == event_id_for("/mutt/snmptrapd/test", str(ce["id"]))


def test_the_command_prints_the_event_and_fails_with_one_line() -> None:
    raw = (DATA / "traphandle_v2c.txt").read_bytes()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUTT_")}
    shown = subprocess.run(
        source_command("trap-handle", "--print"),
        input=raw,
        capture_output=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert b'"trap_oid": "1.3.6.1.4.1.9.9.41.2.0.1"' in shown.stdout
    failed = subprocess.run(
        source_command("trap-handle", "--ingest-url", "http://127.0.0.1:9/", "--timeout", "1"),
        input=raw,
        capture_output=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert failed.returncode == 1
    lines = failed.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mutt: ingest did not take the trap within 1s")
