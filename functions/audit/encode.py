"""Audit rows as PostgreSQL ``COPY`` text, encoded in chunks so the server can start early.

COPY text is one line per row, columns separated by tabs, ``\\N`` for NULL,
and backslash escapes for backslash, tab, newline and carriage return;
PostgreSQL text cannot hold U+0000 at all, so it is dropped. The line is
built field by field for the exact column types of :class:`AuditRow` (no
per-value type dispatch), and timestamps go through orjson (RFC 3339 with
the offset, about 5x faster than ``datetime.isoformat`` with a tzinfo).

:func:`copy_chunks` yields the stream a few hundred rows at a time: pg8000
sends each chunk as soon as it is yielded, so the server parses and indexes
one chunk while Python encodes the next (the two together cost about what the
server alone does, measured in ``bench.audit_bench``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from functions.audit.writer import AuditRow

CHUNK_ROWS = 100  # rows per CopyData message: small enough to overlap, large enough to batch

_NULL = "\\N"
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_SPECIAL = re.compile("[\\\\\t\n\r\x00]")  # what COPY text needs escaped (or dropped)


def _text(value: str) -> str:
    if _SPECIAL.search(value) is None:  # the common case: one C scan, no copy
        return value
    return value.replace("\x00", "").translate(_ESCAPES)


def _time(value: datetime) -> str:
    return orjson.dumps(value)[1:-1].decode()


def _json(value: dict[str, object]) -> str:
    # JSON escapes every control character, so only backslashes need doubling.
    text = orjson.dumps(value).decode()
    if "\\u0000" in text:  # rare: walk the value only when a NUL may hide in it
        text = orjson.dumps(_without_nul(value)).decode()
    return text.replace("\\", "\\\\")


def _without_nul(value: object) -> object:
    """PostgreSQL text and jsonb cannot hold U+0000; drop it wherever it hides."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


def encode_line(row: AuditRow) -> str:
    """One row, in the order of ``audit.COLUMNS``, with its newline."""
    return (
        "\t".join(
            (
                row.event_id.hex,  # PostgreSQL reads 32 hex digits
                _time(row.event_time),
                _time(row.received_at),
                _text(row.hostname),
                _NULL if row.matched_rule_id is None else str(int(row.matched_rule_id)),
                _text(row.handling_decision),
                _text(row.environment),
                _NULL if row.team is None else _text(row.team),
                _NULL if row.severity is None else str(int(row.severity)),
                "t" if row.forwarded else "f",
                _NULL if row.alert_id is None else row.alert_id.hex,
                _json(row.event),
                _NULL if row.correlation is None else _text(row.correlation),
            )
        )
        + "\n"
    )


def encode_copy(rows: Sequence[AuditRow]) -> bytes:
    """The rows as one COPY text stream."""
    return "".join(map(encode_line, rows)).encode()


def copy_chunks(rows: Sequence[AuditRow], sent: list[bytes]) -> Iterator[bytes]:
    """The rows as COPY text, ``CHUNK_ROWS`` at a time; each chunk is also kept in ``sent``.

    ``sent`` lets a caller send the same bytes again (the fallback after a
    conflict) without encoding twice.
    """
    for start in range(0, len(rows), CHUNK_ROWS):
        chunk = encode_copy(rows[start : start + CHUNK_ROWS])
        sent.append(chunk)
        yield chunk
