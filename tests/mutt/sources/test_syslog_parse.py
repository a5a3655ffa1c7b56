"""The syslog parser: the RFCs' own examples, Cisco's formats, and random bytes.

Every line must become an event ingest accepts: a parser that refuses (or
crashes on) an odd line loses the one message that said a device was dying.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from functions.ingest.cloudevent_data import parse_cloudevent_data
from mutt.sources.events import clamp_utf8, rfc3339, syslog_data, syslog_event
from mutt.sources.syslog_parse import FACILITIES, parse_syslog
from shared.models import TYPE_SYSLOG, Event

FUZZ = settings(
    max_examples=int(os.environ.get("MUTT_FUZZ_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
RECEIVED_NS = 1_737_374_400_000_000_000  # 2025-01-20T12:00:00Z
BOM = b"\xef\xbb\xbf"


def fields(line: bytes) -> dict[str, Any]:
    """What the parser found, as the event data ``mutt syslog`` would send (sender 192.0.2.9)."""
    parsed = parse_syslog(line)
    assert parsed is not None
    return syslog_data(parsed, "192.0.2.9")


def ingested(line: bytes, peer: str = "192.0.2.9") -> Event:
    """The event ingest makes of the CloudEvent ``mutt syslog`` sends for ``line``."""
    parsed = parse_syslog(line)
    assert parsed is not None
    ce = syslog_event(parsed, line, peer=peer, source="/mutt/syslog/test", received_ns=RECEIVED_NS)
    return parse_cloudevent_data(
        ce["type"],
        ce["data"],
        source=ce["source"],
        event_id=ce["id"],
        time=ce["time"],
        received_at=datetime.fromtimestamp(RECEIVED_NS / 1e9, UTC),
    )


# ---------------------------------------------------------------- RFC 5424 section 6.5

RFC5424_EXAMPLES = [
    (
        b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - "
        + BOM
        + b"'su root' failed for lonvick on /dev/pts/8",
        {
            "hostname": "mymachine.example.com",
            "timestamp": "2003-10-11T22:14:15.003Z",
            "facility": "auth",
            "syslog_severity": 2,
            "app_name": "su",
            "msgid": "ID47",
            "message": "'su root' failed for lonvick on /dev/pts/8",
        },
    ),
    (
        b"<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - "
        b"%% It's time to make the do-nuts.",
        {
            "hostname": "192.0.2.1",
            "timestamp": "2003-08-24T05:14:15.000003-07:00",
            "facility": "local4",
            "syslog_severity": 5,
            "app_name": "myproc",
            "procid": "8710",
            "message": "%% It's time to make the do-nuts.",
        },
    ),
    (
        b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
        b'[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] '
        + BOM
        + b"An application event log entry...",
        {
            "hostname": "mymachine.example.com",
            "app_name": "evntslog",
            "msgid": "ID47",
            "structured_data": {
                "exampleSDID@32473": {"iut": "3", "eventSource": "Application", "eventID": "1011"}
            },
            "message": "An application event log entry...",
        },
    ),
    (
        b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
        b'[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"]'
        b'[examplePriority@32473 class="high"]',
        {
            "structured_data": {
                "exampleSDID@32473": {"iut": "3", "eventSource": "Application", "eventID": "1011"},
                "examplePriority@32473": {"class": "high"},
            },
            # no MSG: the structured data is what the line says
            "message": '[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"]'
            '[examplePriority@32473 class="high"]',
        },
    ),
]

# ---------------------------------------------------------------- RFC 3164 section 5.4

RFC3164_EXAMPLES = [
    (
        b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
        {
            "hostname": "mymachine",
            "timestamp": "Oct 11 22:14:15",
            "facility": "auth",
            "syslog_severity": 2,
            "app_name": "su",
            "message": "'su root' failed for lonvick on /dev/pts/8",
            "syslog_protocol": "rfc3164",
        },
    ),
    # No PRI: a relay gives it <13> (user.notice) and keeps it all as content.
    (
        b"Use the BFG!",
        {
            "hostname": "192.0.2.9",
            "facility": "user",
            "syslog_severity": 5,
            "message": "Use the BFG!",
            "syslog_protocol": "none",
        },
    ),
    (
        b"<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!",
        {"hostname": "10.0.0.99", "timestamp": "Feb  5 17:32:18", "message": "Use the BFG!"},
    ),
    # The RFC: a relay takes "CST" for the HOSTNAME and the rest for the content.
    (
        b"<165>Aug 24 05:34:00 CST 1987 mymachine myproc[10]: %% It's time to make the "
        b"do-nuts.  %%  Ingredients: Mix=OK, Jel=OK, Dyn=OK, Sug=OK, Eggs=OK, Temp=OK, "
        b"Blast=OK, Blow=OK, Decorate=OK",
        {
            "hostname": "CST",
            "timestamp": "Aug 24 05:34:00",
            "facility": "local4",
            "syslog_severity": 5,
            "message": "1987 mymachine myproc[10]: %% It's time to make the do-nuts.  %%  "
            "Ingredients: Mix=OK, Jel=OK, Dyn=OK, Sug=OK, Eggs=OK, Temp=OK, Blast=OK, "
            "Blow=OK, Decorate=OK",
        },
    ),
    # The RFC: no valid TIMESTAMP, so no HOSTNAME either; all of it is content.
    (
        b"<0>1990 Oct 22 10:52:01 TZ-6 scapegoat.dmz.example.org 10.1.2.3 sched[0]: "
        b"That's All Folks!",
        {
            "hostname": "192.0.2.9",
            "facility": "kern",
            "syslog_severity": 0,
            "message": "1990 Oct 22 10:52:01 TZ-6 scapegoat.dmz.example.org 10.1.2.3 "
            "sched[0]: That's All Folks!",
        },
    ),
]

# ---------------------------------------------------------------- Cisco IOS / ASA / NX-OS

CISCO_EXAMPLES = [
    # IOS default: sequence number, '*' = clock not synchronised, no hostname
    (
        b"<189>45: *Mar  1 18:46:11.123: %LINK-3-UPDOWN: Interface GigabitEthernet0/1, "
        b"changed state to down",
        {
            "hostname": "192.0.2.9",
            "timestamp": "*Mar  1 18:46:11.123",
            "facility": "local7",
            "syslog_severity": 5,  # from the PRI, not from the mnemonic
            "sequence": 45,
            "cisco_facility": "LINK",
            "cisco_severity": 3,
            "cisco_mnemonic": "UPDOWN",
            "source_type": "cisco-ios",
            "message": "%LINK-3-UPDOWN: Interface GigabitEthernet0/1, changed state to down",
        },
    ),
    # logging origin-id hostname, service timestamps with a zone
    (
        b"<187>000123: core-rtr-01: *Mar  1 18:46:11.123 UTC: %LINEPROTO-5-UPDOWN: "
        b"Line protocol on Interface Gi0/1, changed state to down",
        {
            "hostname": "core-rtr-01",
            "timestamp": "*Mar  1 18:46:11.123 UTC",
            "syslog_severity": 3,
            "sequence": 123,
            "cisco_facility": "LINEPROTO",
            "cisco_severity": 5,
            "cisco_mnemonic": "UPDOWN",
            "message": "%LINEPROTO-5-UPDOWN: Line protocol on Interface Gi0/1, "
            "changed state to down",
        },
    ),
    # as relayed by a syslog server: BSD header, then the Cisco message
    (
        b"<187>Mar  1 18:46:11 core-rtr-01 %LINK-3-UPDOWN: Interface Gi0/1, changed state to down",
        {
            "hostname": "core-rtr-01",
            "timestamp": "Mar  1 18:46:11",
            "cisco_mnemonic": "UPDOWN",
            "message": "%LINK-3-UPDOWN: Interface Gi0/1, changed state to down",
        },
    ),
    # year and sub-facility (Catalyst 6500: FACILITY-SUBFACILITY-SEVERITY-MNEMONIC)
    (
        b"<188>12: Jan 15 2025 14:30:22.456: %C6KPWR-SP-4-PSOK: power supply 1 turned on.",
        {
            "timestamp": "Jan 15 2025 14:30:22.456",
            "syslog_severity": 4,
            "cisco_facility": "C6KPWR-SP",
            "cisco_severity": 4,
            "cisco_mnemonic": "PSOK",
        },
    ),
    # ASA with a device id: "hostname : %ASA-..."
    (
        b"<166>Jan 15 2025 14:30:22 asa-01 : %ASA-6-302013: Built outbound TCP connection 1",
        {
            "hostname": "asa-01",
            "syslog_severity": 6,
            "cisco_facility": "ASA",
            "cisco_mnemonic": "302013",
            "message": "%ASA-6-302013: Built outbound TCP connection 1",
        },
    ),
    # no timestamp at all (no service timestamps)
    (
        b"<187>%SYS-5-CONFIG_I: Configured from console by vty0 (10.0.0.1)",
        {
            "hostname": "192.0.2.9",
            "cisco_facility": "SYS",
            "cisco_severity": 5,
            "cisco_mnemonic": "CONFIG_I",
            "message": "%SYS-5-CONFIG_I: Configured from console by vty0 (10.0.0.1)",
        },
    ),
    # relayed by rsyslog as RFC 5424 (RSYSLOG_SyslogProtocol23Format keeps BSD's leading space)
    (
        b"<187>1 2025-01-20T12:00:00+00:00 core-rtr-01 - - - -  %LINK-3-UPDOWN: "
        b"Interface Gi0/1, changed state to down",
        {
            "hostname": "core-rtr-01",
            "syslog_protocol": "rfc5424",
            "cisco_facility": "LINK",
            "cisco_mnemonic": "UPDOWN",
            "message": "%LINK-3-UPDOWN: Interface Gi0/1, changed state to down",
        },
    ),
    # a program tag before the Cisco message (IOS XR style, space before the colon)
    (
        b"<187>Mar  1 18:46:11 xr-01 ifmgr[245]: %PKT_INFRA-LINK-3-UPDOWN : Interface "
        b"Gi0/0/0/1, changed state to Down",
        {
            "hostname": "xr-01",
            "app_name": "ifmgr",
            "procid": "245",
            "cisco_facility": "PKT_INFRA-LINK",
            "cisco_severity": 3,
            "cisco_mnemonic": "UPDOWN",
        },
    ),
]


@pytest.mark.parametrize(
    ("line", "expected"),
    RFC5424_EXAMPLES + RFC3164_EXAMPLES + CISCO_EXAMPLES,
    ids=[f"5424-{i}" for i in range(len(RFC5424_EXAMPLES))]
    + [f"3164-{i}" for i in range(len(RFC3164_EXAMPLES))]
    + [f"cisco-{i}" for i in range(len(CISCO_EXAMPLES))],
)
def test_published_examples_parse_to_their_fields(line: bytes, expected: dict[str, Any]) -> None:
    got = fields(line)
    assert {key: got.get(key) for key in expected} == expected
    event = ingested(line)
    assert event.hostname == str(expected.get("hostname", got["hostname"])).lower()


def test_rfc5424_fields_land_in_the_event() -> None:
    event = ingested(RFC5424_EXAMPLES[0][0])
    assert event.time == datetime(2003, 10, 11, 22, 14, 15, 3000, tzinfo=UTC)
    assert not event.time_estimated
    assert event.severity is not None and event.severity.value == 2
    assert event.attributes["facility"] == "auth"
    assert event.attributes["msgid"] == "ID47"
    assert event.source_type == "syslog"


def test_cisco_event_keeps_the_mnemonic_and_takes_severity_from_pri() -> None:
    event = ingested(CISCO_EXAMPLES[1][0])
    assert event.hostname == "core-rtr-01"
    assert event.severity is not None and event.severity.value == 3
    assert event.source_type == "cisco-ios"
    assert event.attributes["cisco_facility"] == "LINEPROTO"
    assert event.attributes["cisco_mnemonic"] == "UPDOWN"
    assert event.time.month == 3 and event.time.day == 1 and not event.time_estimated


def test_missing_hostname_falls_back_to_the_sender_address() -> None:
    line = b"<13>1 2025-01-20T12:00:00Z - app - - - hello"
    assert ingested(line, peer="::ffff:10.1.2.3").hostname == "10.1.2.3"
    assert ingested(b"<13>hello", peer="fe80::1").hostname == "fe80::1"


def test_structured_data_escapes_and_a_bad_sd_becomes_the_message() -> None:
    line = b'<13>1 - h a - - [x@1 q="a\\"b\\\\c\\]d" e="\\n"] msg'
    assert fields(line)["structured_data"] == {"x@1": {"q": 'a"b\\c]d', "e": "\\n"}}
    assert fields(line)["message"] == "msg"
    broken = b'<13>1 - h a - - [x@1 q="unterminated] msg'
    assert "structured_data" not in fields(broken)
    assert fields(broken)["message"] == '[x@1 q="unterminated] msg'


def test_huge_structured_data_is_kept_raw_and_cut() -> None:
    params = " ".join(f'p{i}="{"v" * 200}"' for i in range(100))
    line = f"<13>1 - h a - - [big@1 {params}] msg".encode()
    got = fields(line)
    assert "structured_data" not in got
    assert got["structured_data_raw"].startswith("[big@1 p0=")
    assert len(got["structured_data_raw"]) <= 4096
    assert ingested(line).message == "msg"


def test_invalid_pri_is_treated_as_no_pri() -> None:
    got = fields(b"<192>Oct 11 22:14:15 host app: x")
    assert (got["facility"], got["syslog_severity"], got["syslog_protocol"]) == ("user", 5, "none")


def test_blank_frames_are_nothing_and_header_only_lines_are_their_own_message() -> None:
    assert parse_syslog(b"") is None
    assert parse_syslog(b" \r\n") is None
    assert fields(b"<13>")["message"] == "<13>"
    assert fields(b"<13>Oct 11 22:14:15 host")["message"] == "host"


def test_nul_and_invalid_utf8_are_made_storable() -> None:
    event = ingested(b"<13>Oct 11 22:14:15 host app: a\x00b \xff\xfe end")
    assert "\x00" not in event.message
    assert event.message == "a\ufffdb \ufffd\ufffd end"


def test_long_messages_are_cut_to_what_ingest_takes() -> None:
    text, cut = clamp_utf8("é" * 40_000)
    assert cut and len(text.encode()) <= 65_536
    line = b"<13>Oct 11 22:14:15 host app: " + "é".encode() * 40_000
    event = ingested(line)
    assert event.attributes["truncated"] is True
    assert len(event.message.encode()) <= 65_536


def test_ids_are_deterministic_per_receive_and_time_is_the_receive_time() -> None:
    parsed = parse_syslog(b"<13>hello")
    assert parsed is not None
    one = syslog_event(parsed, b"<13>hello", peer="10.0.0.1", source="/s", received_ns=1)
    again = syslog_event(parsed, b"<13>hello", peer="10.0.0.1", source="/s", received_ns=1)
    later = syslog_event(parsed, b"<13>hello", peer="10.0.0.1", source="/s", received_ns=2)
    assert one == again and one["id"] != later["id"]
    assert one["type"] == TYPE_SYSLOG
    assert rfc3339(RECEIVED_NS + 123_456_789) == "2025-01-20T12:00:00.123456Z"


# ---------------------------------------------------------------- properties

printusascii = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1)


def _token(max_size: int) -> st.SearchStrategy[str]:
    return printusascii.filter(lambda s: s != "-").map(lambda s: s[:max_size])


sd_name = st.text(
    st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=' ="]'),
    min_size=1,
    max_size=32,
)
sd_value = st.text(st.characters(codec="utf-8", exclude_characters="\x00"))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


@FUZZ
@given(
    pri=st.integers(0, 191),
    timestamp=st.sampled_from(["-", "2025-01-20T12:00:00Z", "2003-08-24T05:14:15.000003-07:00"]),
    hostname=_token(255),
    app=_token(48),
    procid=_token(128),
    msgid=_token(32),
    sd=st.dictionaries(sd_name, st.dictionaries(sd_name, sd_value, max_size=3), max_size=3),
    message=st.text(st.characters(codec="utf-8", exclude_characters="\x00\r\n")),
)
def test_any_well_formed_rfc5424_line_round_trips(
    pri: int,
    timestamp: str,
    hostname: str,
    app: str,
    procid: str,
    msgid: str,
    sd: dict[str, dict[str, str]],
    message: str,
) -> None:
    sd_text = "".join(
        "[" + name + "".join(f' {k}="{_escape(v)}"' for k, v in params.items()) + "]"
        for name, params in sd.items()
    )
    line = f"<{pri}>1 {timestamp} {hostname} {app} {procid} {msgid} {sd_text or '-'} {message}"
    parsed = parse_syslog(line.encode())
    assert parsed is not None
    assert parsed.protocol == "rfc5424"
    assert (parsed.facility, parsed.severity) == divmod(pri, 8)
    assert parsed.timestamp == (None if timestamp == "-" else timestamp)
    assert (parsed.hostname, parsed.app_name, parsed.procid, parsed.msgid) == (
        hostname,
        app,
        procid,
        msgid,
    )
    assert parsed.structured_data == (sd or None)
    if message.strip() and parsed.cisco is None:
        assert parsed.message == message.removeprefix("\ufeff").lstrip(" ")


months = st.sampled_from(
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
)
host = st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z0-9-]{1,10}){0,3}", fullmatch=True)


@FUZZ
@given(
    pri=st.integers(0, 191),
    month=months,
    day=st.integers(1, 31),
    clock=st.times().map(lambda t: t.strftime("%H:%M:%S")),
    hostname=host,
    tag=st.from_regex(r"[a-zA-Z][a-zA-Z0-9_./-]{0,30}", fullmatch=True),
    pid=st.none() | st.integers(0, 10**6),
    message=st.text(st.characters(codec="utf-8", exclude_characters="\x00\r\n"), min_size=1).filter(
        lambda s: s.strip() and s == s.lstrip()
    ),
)
def test_any_bsd_line_round_trips(
    pri: int,
    month: str,
    day: int,
    clock: str,
    hostname: str,
    tag: str,
    pid: int | None,
    message: str,
) -> None:
    timestamp = f"{month} {day:2d} {clock}"
    procid = f"[{pid}]" if pid is not None else ""
    parsed = parse_syslog(f"<{pri}>{timestamp} {hostname} {tag}{procid}: {message}".encode())
    assert parsed is not None
    assert (parsed.facility, parsed.severity) == divmod(pri, 8)
    assert (parsed.timestamp, parsed.hostname) == (timestamp, hostname)
    if parsed.cisco is None:
        assert (parsed.app_name, parsed.procid) == (tag, None if pid is None else str(pid))
        assert parsed.message == message


@FUZZ
@given(
    pri=st.integers(0, 191),
    seq=st.none() | st.integers(0, 10**9),
    facility=st.from_regex(r"[A-Z][A-Z0-9_]{0,15}(-[A-Z]{2})?", fullmatch=True),
    severity=st.integers(0, 7),
    mnemonic=st.from_regex(r"[A-Z0-9_]{1,20}", fullmatch=True),
    text=st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=80),
)
def test_any_cisco_line_keeps_its_mnemonic(
    pri: int, seq: int | None, facility: str, severity: int, mnemonic: str, text: str
) -> None:
    prefix = f"{seq}: " if seq is not None else ""
    line = f"<{pri}>{prefix}*Mar  1 18:46:11.123: %{facility}-{severity}-{mnemonic}: {text}"
    got = fields(line.encode())
    assert got["syslog_severity"] == pri % 8
    assert (got["cisco_facility"], got["cisco_severity"], got["cisco_mnemonic"]) == (
        facility,
        severity,
        mnemonic,
    )
    assert got.get("sequence") == seq
    assert got["message"].startswith(f"%{facility}-{severity}-{mnemonic}:")


@FUZZ
@given(st.binary(max_size=600) | st.text(max_size=300).map(lambda s: s.encode("utf-8", "replace")))
@example(b"<13>1 " + b"x" * 70)
@example(b"<13>1 - - - - - [a")
@example(b"<9999999>")
@example(b"<13>Jan  1 00:00:00 " + b"\x00" * 10)
@example(b"\xff\xfe<13>")
@example(b"<13>1 - h\x01st a - - - m")
def test_random_bytes_never_crash_and_always_make_an_event_ingest_accepts(raw: bytes) -> None:
    parsed = parse_syslog(raw)
    if parsed is None:
        assert not raw.decode("utf-8", "replace").replace("\x00", "x").strip()
        return
    assert 0 <= parsed.severity <= 7 and parsed.facility_name in FACILITIES
    event = ingested(raw, peer="192.0.2.9")  # raises InputError if ingest would refuse it
    assert event.message.strip()
    orjson.dumps(event.model_dump(mode="json"))


@given(st.integers(min_value=0, max_value=253_402_300_799_999_999_999))  # to year 9999
def test_rfc3339_writes_what_datetime_writes(ns: int) -> None:
    seconds, rest = divmod(ns, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, UTC).replace(microsecond=rest // 1000)
    assert rfc3339(ns) == moment.isoformat().replace("+00:00", "Z")
