"""One syslog line (RFC 5424, RFC 3164, Cisco IOS) → the fields of an ``io.mutt.syslog.v1`` event.

Parsing never fails. A line that follows no known header is still an event
(RFC 3164 section 4.3.3: a relay gives a line without a valid PRI the
priority user.notice and keeps all of it as the message), because a device
that writes odd syslog is still a device that may be down. What the header
does not say (hostname, time) is left to the caller, who knows the sender's
address and the receive time.

RFC 3164 is a description of practice, not a grammar, so its header is read
the way rsyslog reads it: an optional Cisco sequence number, a timestamp
(BSD ``Mmm dd hh:mm:ss`` with Cisco's variants, or RFC 3339), then a
hostname only when a timestamp was found and the next word is not a tag
(``sshd[42]:``, ``%LINK-3-UPDOWN:``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import orjson

FACILITIES = (
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    *(f"local{n}" for n in range(8)),
)
DEFAULT_PRI = 13  # user.notice: what RFC 3164 4.3.3 gives a line without a valid PRI
MAX_PRI = 191  # facility 23 (local7), severity 7

# Structured data larger than this is kept as raw text: ingest caps attributes
# at 32 KiB / 1024 values, and a message must never be refused for its SD.
MAX_SD_JSON_BYTES = 8192
MAX_SD_VALUES = 256
MAX_SD_RAW_CHARS = 4096

_PRI = re.compile(r"<(\d{1,3})>")
_RFC5424 = re.compile(
    r"([1-9]\d{0,2}) "  # VERSION
    r"(\S{1,64}) "  # TIMESTAMP or -
    r"(\S{1,255}) "  # HOSTNAME or -
    r"(\S{1,48}) "  # APP-NAME or -
    r"(\S{1,128}) "  # PROCID or -
    r"(\S{1,32})"  # MSGID or -
    r"(?: |$)"
)
_SD_NAME = re.compile(r'[^ ="\]]{1,32}')
_SD_VALUE = re.compile(r'((?:[^"\\]|\\.)*)"', re.DOTALL)
_SD_ESCAPE = re.compile(r'\\(["\\\]])')

_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
# BSD timestamp with Cisco's additions: '*' or '.' (clock not in sync), a year,
# a fraction, and a zone name, the latter only where Cisco puts it (before ':').
_BSD_TIME = (
    rf"[*.]?{_MONTH} {{1,2}}\d{{1,2}}(?: \d{{4}})? \d{{2}}:\d{{2}}:\d{{2}}(?:\.\d{{1,9}})?"
    r"(?: [A-Z]{3,5}(?=:))?"
)
_ISO_TIME = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:?\d{2})?"
# [seq ": "] [host ": "] TIMESTAMP [":"] (space | end); the optional parts only
# count when a timestamp follows them (Cisco: "000123: router1: *Mar  1 ...: ").
_RFC3164_HEAD = re.compile(
    r"(?:(?P<seq>\d{1,10}): +)?"
    r"(?:(?P<host>[A-Za-z0-9][A-Za-z0-9._-]{0,254}): +)?"
    rf"(?P<ts>{_BSD_TIME}|{_ISO_TIME}):?(?: +|$)"
)
_WORD = re.compile(r"(\S{1,255}) +(?=\S)")
_TAG = re.compile(r"([^\s\[\]:]{1,48})(?:\[([^\]\s]{0,128})\])?: ?")
# %FACILITY[-SUBFACILITY]-SEVERITY-MNEMONIC: (IOS, IOS XE, NX-OS, ASA; XR puts a space before ':')
_CISCO = re.compile(r"(?::\s*)?%((?:[A-Z0-9_]+-)*?[A-Z0-9_]+)-([0-7])-([A-Za-z0-9_]+) ?:")


@dataclass(frozen=True, slots=True)
class CiscoTag:
    """``%LINK-3-UPDOWN:``: what a Cisco device says the message is about."""

    facility: str
    severity: int
    mnemonic: str


@dataclass(frozen=True, slots=True)
class SyslogMessage:
    """What a line's header says; ``None`` where it says nothing."""

    protocol: str  # "rfc5424", "rfc3164", or "none" (no header recognized)
    facility: int
    severity: int
    message: str
    pri_valid: bool = True
    timestamp: str | None = None
    hostname: str | None = None
    app_name: str | None = None
    procid: str | None = None
    msgid: str | None = None
    structured_data: dict[str, dict[str, str]] | None = None
    structured_data_raw: str | None = None
    sequence: int | None = None
    cisco: CiscoTag | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def facility_name(self) -> str:
        return FACILITIES[self.facility]


def decode_line(raw: bytes) -> str:
    """Bytes as text: invalid UTF-8 replaced, NUL (which PostgreSQL refuses) made visible."""
    text = raw.decode("utf-8", errors="replace")
    return text.replace("\x00", "\ufffd")


def parse_syslog(raw: bytes) -> SyslogMessage | None:
    """Parse one frame (without its trailer); ``None`` only for a blank frame."""
    text = decode_line(raw).rstrip("\r\n")
    if not text.strip():
        return None
    pri_match = _PRI.match(text)
    if pri_match is None or int(pri_match.group(1)) > MAX_PRI:
        return _rfc3164(text, DEFAULT_PRI, text, pri_valid=False)
    pri = int(pri_match.group(1))
    rest = text[pri_match.end() :]
    parsed = _rfc5424(rest, pri, text)
    if parsed is not None:
        return parsed
    return _rfc3164(rest, pri, text)


# ---------------------------------------------------------------- RFC 5424


def _rfc5424(rest: str, pri: int, line: str) -> SyslogMessage | None:
    head = _RFC5424.match(rest)
    if head is None:
        return None
    version, timestamp, hostname, app_name, procid, msgid = head.groups()
    pos = head.end()
    sd: dict[str, dict[str, str]] | None = None
    sd_raw: str | None = None
    if rest.startswith("-", pos) and (len(rest) == pos + 1 or rest[pos + 1] == " "):
        pos += 2
    elif rest.startswith("[", pos):
        parsed = _structured_data(rest, pos)
        if parsed is not None:
            sd, end = parsed
            sd_raw = rest[pos:end]
            pos = end + 1
    # Leading spaces are a relay's artifact (rsyslog forwards "- -  msg" for BSD input).
    message = rest[pos:].removeprefix("\ufeff").lstrip(" ")
    cisco = _cisco(message)
    if cisco is not None:
        message = message[message.index("%") :]
    extra: dict[str, object] = {}
    if version != "1":
        extra["syslog_version"] = int(version)
    sd_text = sd_raw
    if sd is not None and not _sd_fits(sd):
        sd = None  # too big for attributes: kept as (cut) raw text instead
    else:
        sd_raw = None
    return SyslogMessage(
        protocol="rfc5424",
        facility=pri >> 3,
        severity=pri & 7,
        message=_message_or_line(message, sd_text or line),
        timestamp=_nil(timestamp),
        hostname=_nil(hostname),
        app_name=_nil(app_name),
        procid=_nil(procid),
        msgid=_nil(msgid),
        structured_data=sd,
        structured_data_raw=sd_raw[:MAX_SD_RAW_CHARS] if sd_raw else None,
        cisco=cisco,
        extra=extra,
    )


def _structured_data(text: str, pos: int) -> tuple[dict[str, dict[str, str]], int] | None:
    """``[id k="v" ...]...`` from ``pos``; (elements, end) when well formed and followed
    by a space or the end of the line, else ``None`` (the text is then the message)."""
    elements: dict[str, dict[str, str]] = {}
    while pos < len(text) and text[pos] == "[":
        name = _SD_NAME.match(text, pos + 1)
        if name is None:
            return None
        params = elements.setdefault(name.group(), {})
        pos = name.end()
        while True:
            if text.startswith("]", pos):
                pos += 1
                break
            if not text.startswith(" ", pos):
                return None
            param = _SD_NAME.match(text, pos + 1)
            if param is None or not text.startswith('="', param.end()):
                return None
            value = _SD_VALUE.match(text, param.end() + 2)
            if value is None:
                return None
            params[param.group()] = _SD_ESCAPE.sub(r"\1", value.group(1))
            pos = value.end()
    if pos < len(text) and text[pos] != " ":
        return None
    return elements, pos


def _sd_fits(sd: dict[str, dict[str, str]]) -> bool:
    values = sum(1 + len(params) for params in sd.values())
    return values <= MAX_SD_VALUES and len(orjson.dumps(sd)) <= MAX_SD_JSON_BYTES


def _nil(value: str) -> str | None:
    return None if value == "-" else value


# ---------------------------------------------------------------- RFC 3164 and Cisco


def _rfc3164(rest: str, pri: int, line: str, *, pri_valid: bool = True) -> SyslogMessage:
    timestamp = hostname = None
    sequence: int | None = None
    head = _RFC3164_HEAD.match(rest)
    pos = 0
    if head is not None:
        timestamp = head.group("ts")
        hostname = head.group("host")
        sequence = int(head.group("seq")) if head.group("seq") else None
        pos = head.end()
        if hostname is None:
            word = _WORD.match(rest, pos)
            if word is not None and _looks_like_host(word.group(1)):
                hostname = word.group(1)
                pos = word.end()
    message = rest[pos:]
    app_name = procid = None
    cisco = _cisco(message)
    if cisco is None:
        tag = _TAG.match(message)
        if tag is not None and tag.end() < len(message):
            app_name, procid = tag.group(1), tag.group(2)
            message = message[tag.end() :]
            cisco = _cisco(message)
    if cisco is not None:
        message = message[message.index("%") :]
    return SyslogMessage(
        protocol="rfc3164" if pri_valid else "none",
        facility=pri >> 3,
        severity=pri & 7,
        message=_message_or_line(message, line),
        pri_valid=pri_valid,
        timestamp=timestamp,
        hostname=hostname,
        app_name=app_name,
        procid=procid or None,
        sequence=sequence,
        cisco=cisco,
    )


def _looks_like_host(word: str) -> bool:
    """A hostname or address, not a tag (``su:``, ``sshd[1]:``) or a Cisco ``%X-1-Y:``."""
    return not word.endswith(":") and "[" not in word and not word.startswith("%")


def _cisco(message: str) -> CiscoTag | None:
    found = _CISCO.match(message)
    if found is None:
        return None
    return CiscoTag(found.group(1), int(found.group(2)), found.group(3))


def _message_or_line(message: str, line: str) -> str:
    """A header with nothing after it still has to say something: its SD, or the line."""
    return message if message.strip() else line.strip()
