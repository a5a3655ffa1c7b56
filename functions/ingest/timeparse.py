"""Event time: every format senders use, to an aware UTC datetime.

A time that is missing or cannot be read is not an error: the event is still
worth routing, so the caller stamps it with the received time and sets
``time_estimated`` (``parse_time`` returns ``None`` for that).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_TEXT = 64  # no real timestamp is longer; refuse cheaply before any parsing

# Epoch magnitude → units per second. Below 1e11 s is year 5138, so larger
# values are milliseconds (1e11 ms = 1973), then microseconds, then nanoseconds.
_EPOCH_UNITS = ((1e11, 1), (1e14, 1_000), (1e17, 1_000_000), (1e20, 1_000_000_000))

_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
        start=1,
    )
}
# RFC 3164 "Jan 15 14:30:22" (day space-padded), plus what Cisco adds: a
# leading '*' or '.' (clock not synchronised), a year, a fraction, "UTC".
_RFC3164 = re.compile(
    r"[*.]?([A-Za-z]{3}) {1,2}(\d{1,2})(?: (\d{4}))? (\d{2}):(\d{2}):(\d{2})"
    r"(?:\.(\d{1,9}))?(?: ?(?:UTC|GMT|Z))?"
)
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def parse_time(value: object, received_at: datetime) -> datetime | None:
    """The UTC time ``value`` denotes, or ``None`` when it is missing or unreadable.

    Accepts ISO 8601 / RFC 3339 (any fraction length; no offset means UTC),
    epoch seconds, milliseconds, microseconds or nanoseconds (number or digit
    string), and RFC 3164 without a year (the year nearest ``received_at``).
    """
    if isinstance(value, str):
        return _parse_text(value, received_at)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _from_epoch(value)
    if isinstance(value, datetime):
        return _to_utc(value)
    return None


def _parse_text(text: str, received_at: datetime) -> datetime | None:
    if not text or len(text) > _MAX_TEXT:
        return None
    if text.isascii() and text.isdigit():
        return _from_epoch(int(text))
    try:
        return _to_utc(datetime.fromisoformat(text))
    except ValueError:
        pass
    text = text.strip()
    if _NUMBER.fullmatch(text):
        return _from_epoch(float(text) if "." in text else int(text))
    try:
        return _to_utc(datetime.fromisoformat(text.upper()))
    except ValueError:
        pass
    match = _RFC3164.fullmatch(text)
    return _from_rfc3164(match, received_at) if match else None


def _to_utc(value: datetime) -> datetime | None:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):  # year 1 with a positive offset, etc.
        return None


def _from_epoch(value: float) -> datetime | None:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    magnitude = abs(value)
    per_second = next((units for limit, units in _EPOCH_UNITS if magnitude < limit), 0)
    if not per_second:
        return None
    try:
        if isinstance(value, int):  # exact: no float rounding of milliseconds
            return _EPOCH + timedelta(microseconds=value * 1_000_000 // per_second)
        return _EPOCH + timedelta(seconds=value / per_second)
    except (OverflowError, ValueError):
        return None


def _from_rfc3164(match: re.Match[str], received_at: datetime) -> datetime | None:
    month_name, day, year, hour, minute, second, fraction = match.groups()
    month = _MONTHS.get(month_name.lower())
    if month is None:
        return None
    micros = int(fraction[:6].ljust(6, "0")) if fraction else 0
    parts = (month, int(day), int(hour), int(minute), int(second), micros)
    if year is not None:
        return _build(int(year), *parts)
    # No year: the candidate nearest the received time (handles Dec 31 → Jan 1).
    best: datetime | None = None
    for candidate_year in (received_at.year, received_at.year - 1, received_at.year + 1):
        candidate = _build(candidate_year, *parts)
        if candidate is not None and (
            best is None or abs(candidate - received_at) < abs(best - received_at)
        ):
            best = candidate
    return best


def _build(
    year: int, month: int, day: int, hour: int, minute: int, second: int, micros: int
) -> datetime | None:
    try:
        return datetime(year, month, day, hour, minute, second, micros, tzinfo=UTC)
    except ValueError:  # Feb 30, hour 25, Feb 29 in a common year
        return None
