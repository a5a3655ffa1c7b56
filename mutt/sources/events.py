"""What the sources send: structured-mode MUTT CloudEvents with deterministic ids.

The id of an event is a hash of what was received and when, so a batch that
is sent again (the answer to the first try was lost) carries the same
``source`` + ``id`` pairs and ingest's dedup drops the second copy, while the
same line received twice (a device repeating itself) stays two events.
"""

from __future__ import annotations

import functools
import hashlib
import socket
import threading
import time
from datetime import UTC, datetime

from functions.ingest.limits import MAX_HOSTNAME_CHARS, MAX_MESSAGE_BYTES
from mutt.sources.syslog_parse import SyslogMessage
from shared.models import TYPE_SYSLOG

SOURCE_TYPE_SYSLOG = "syslog"
SOURCE_TYPE_CISCO = "cisco-ios"

CloudEventDoc = dict[str, object]


def default_source(kind: str) -> str:
    """``/mutt/<kind>/<this host>``: where an event entered MUTT, stable across restarts."""
    return f"/mutt/{kind}/{socket.gethostname() or 'localhost'}"


class ReceiveClock:
    """Strictly increasing receive times (ns), so no two lines share an id input."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def now_ns(self) -> int:
        return self.take(1)

    def take(self, count: int) -> int:
        """The first of ``count`` consecutive receive times, all later than any given before."""
        with self._lock:
            now = max(time.time_ns(), self._last + 1)
            self._last = now + max(1, count) - 1
            return now


def event_id(source: str, peer: str, received_ns: int, raw: bytes) -> str:
    """128 bits of SHA-256 over the source, the sender, the receive time and the raw bytes."""
    digest = hashlib.sha256(f"{source}\n{peer}\n{received_ns}\n".encode())
    digest.update(raw)
    return digest.hexdigest()[:32]


def rfc3339(ns: int) -> str:
    """A receive time as a CloudEvent ``time`` (UTC, microseconds; none when zero, as
    ``datetime.isoformat`` writes it). The date part is formatted once per second:
    at line rate this was a tenth of the listener's CPU."""
    seconds, rest = divmod(ns, 1_000_000_000)
    micros = rest // 1000
    return f"{_second(seconds)}.{micros:06d}Z" if micros else f"{_second(seconds)}Z"


@functools.lru_cache(maxsize=16)
def _second(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None).isoformat()


def cloudevent(
    event_type: str, source: str, ce_id: str, received_ns: int, data: dict[str, object]
) -> CloudEventDoc:
    """A structured-mode CloudEvent; ``time`` is the receive time (ingest's fallback)."""
    return {
        "specversion": "1.0",
        "type": event_type,
        "source": source,
        "id": ce_id,
        "time": rfc3339(received_ns),
        "datacontenttype": "application/json",
        "data": data,
    }


def valid_hostname(name: str | None) -> bool:
    """What ingest accepts as a hostname (ASCII here: real hostnames are)."""
    if not name:
        return False
    host = name[:-1] if name.endswith(".") else name
    return (
        0 < len(host) <= MAX_HOSTNAME_CHARS
        and host.isascii()
        and host.isprintable()
        and " " not in host
    )


def peer_host(address: str) -> str:
    """A sender address as a hostname: IPv4-mapped IPv6 unwrapped."""
    return address.removeprefix("::ffff:") if "." in address else address


def clamp_utf8(text: str, limit: int = MAX_MESSAGE_BYTES) -> tuple[str, bool]:
    """``text`` cut to ``limit`` UTF-8 bytes (on a character boundary); and whether it was cut."""
    if len(text) * 4 <= limit:
        return text, False
    encoded = text.encode("utf-8", errors="replace")
    if len(encoded) <= limit:
        return text, False
    return encoded[:limit].decode("utf-8", errors="ignore"), True


def syslog_data(parsed: SyslogMessage, peer: str, *, truncated: bool = False) -> dict[str, object]:
    """The data of an ``io.mutt.syslog.v1`` event: ingest's fields, the rest as attributes."""
    sender = peer_host(peer)
    hostname = parsed.hostname if valid_hostname(parsed.hostname) else None
    message, cut = clamp_utf8(parsed.message)
    data: dict[str, object] = {
        "hostname": hostname or sender or "unknown",
        "message": message,
        "syslog_severity": parsed.severity,
        "source_type": SOURCE_TYPE_CISCO if parsed.cisco else SOURCE_TYPE_SYSLOG,
        "facility": parsed.facility_name,
        "syslog_protocol": parsed.protocol,
    }
    if sender:
        data["source_ip"] = sender
    if parsed.timestamp:
        data["timestamp"] = parsed.timestamp
    optional = {
        "app_name": parsed.app_name,
        "procid": parsed.procid,
        "msgid": parsed.msgid,
        "structured_data": parsed.structured_data,
        "structured_data_raw": parsed.structured_data_raw,
        "sequence": parsed.sequence,
    }
    data.update({key: value for key, value in optional.items() if value is not None})
    if parsed.cisco is not None:
        data["cisco_facility"] = parsed.cisco.facility
        data["cisco_severity"] = parsed.cisco.severity
        data["cisco_mnemonic"] = parsed.cisco.mnemonic
    if truncated or cut:
        data["truncated"] = True
    data.update(parsed.extra)
    return data


def syslog_event(
    parsed: SyslogMessage,
    raw: bytes,
    *,
    peer: str,
    source: str,
    received_ns: int,
    truncated: bool = False,
) -> CloudEventDoc:
    """One received line as an ``io.mutt.syslog.v1`` CloudEvent."""
    data = syslog_data(parsed, peer, truncated=truncated)
    return cloudevent(
        TYPE_SYSLOG, source, event_id(source, peer, received_ns, raw), received_ns, data
    )
