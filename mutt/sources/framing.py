"""Syslog over TCP: split a byte stream into messages (RFC 6587).

Each frame is either octet-counted (``LEN SP MSG``, what rsyslog's omfwd
sends with ``TCP_Framing="octet-counted"``) or ends with a newline (the
traditional framing, ``logger --tcp``). The choice is made per frame, as
rsyslog's imtcp does: a syslog message starts with ``<``, so a frame that
starts with a digit is octet-counted. Memory is bounded: a frame longer than
``max_bytes`` is cut, and the rest of it is skipped without being kept.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_LENGTH_DIGITS = 10  # RFC 6587 MSG-LEN: no real message is 10 GB
_TRAILERS = b"\r\n\x00"


@dataclass(frozen=True, slots=True)
class Frame:
    """One message's bytes (without framing) and whether it was cut to the limit."""

    data: bytes
    truncated: bool = False


class TcpFramer:
    """Feed bytes as they arrive; get the complete frames back."""

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 1:
            raise ValueError("max_bytes must be positive")
        self.max_bytes = max_bytes
        self._buffer = bytearray()
        self._skip_octets = 0  # rest of an over-long octet-counted frame
        self._skip_line = False  # rest of an over-long newline-terminated frame

    def feed(self, data: bytes) -> list[Frame]:
        """Append ``data``; every frame it completes, in order."""
        self._buffer += data
        frames: list[Frame] = []
        while self._buffer:
            frame = self._next()
            if frame is None:
                break
            if frame.data:
                frames.append(frame)
        return frames

    def close(self) -> list[Frame]:
        """The connection ended: a last line without its newline still counts, and so
        does what arrived of a cut-off octet-counted frame (marked truncated)."""
        frames: list[Frame] = []
        if self._skip_octets or self._skip_line:
            self._buffer.clear()
            return frames
        header = self._octet_header() if self._buffer[:1].isdigit() else "no"
        if isinstance(header, tuple):
            data = bytes(self._buffer[header[1] :]).rstrip(_TRAILERS)
            truncated = True
        else:
            data = bytes(self._buffer).strip(_TRAILERS)
            truncated = False
        self._buffer.clear()
        if data:
            frame = self._cut(data)
            frames.append(Frame(frame.data, truncated or frame.truncated))
        return frames

    def _next(self) -> Frame | None:
        """Consume one frame (or skipped bytes) from the buffer; ``None`` = need more."""
        buf = self._buffer
        if self._skip_octets:
            skipped = min(self._skip_octets, len(buf))
            del buf[:skipped]
            self._skip_octets -= skipped
            return Frame(b"")
        if self._skip_line:
            end = buf.find(b"\n")
            if end < 0:
                buf.clear()
                return None
            del buf[: end + 1]
            self._skip_line = False
            return Frame(b"")
        while buf and buf[0] in _TRAILERS:  # stray newlines between octet-counted frames
            del buf[0]
        if not buf:
            return None
        if buf[:1].isdigit():
            header = self._octet_header()
            if header == "more":
                return None
            if isinstance(header, tuple):
                return self._counted(*header)
        return self._line()

    def _octet_header(self) -> tuple[int, int] | str:
        """(MSG-LEN, header size) of a ``LEN SP`` prefix; "more" = incomplete; "no" = none."""
        buf = self._buffer
        digits = 0
        limit = min(len(buf), MAX_LENGTH_DIGITS + 1)
        while digits < limit and buf[digits : digits + 1].isdigit():
            digits += 1
        if digits > MAX_LENGTH_DIGITS:
            return "no"
        if digits == len(buf):
            return "more"
        if buf[digits] != ord(" "):
            return "no"
        return int(buf[:digits]), digits + 1

    def _counted(self, length: int, start: int) -> Frame | None:
        """An octet-counted frame; ``None`` until enough of it has arrived."""
        buf = self._buffer
        if length <= self.max_bytes:
            if len(buf) < start + length:
                return None
            data = bytes(buf[start : start + length])
            del buf[: start + length]
            return Frame(data.rstrip(_TRAILERS))
        if len(buf) < start + self.max_bytes:
            return None
        data = bytes(buf[start : start + self.max_bytes])
        consumed = min(length, len(buf) - start)
        del buf[: start + consumed]
        self._skip_octets = length - consumed
        return Frame(data.rstrip(_TRAILERS), truncated=True)

    def _line(self) -> Frame | None:
        buf = self._buffer
        end = buf.find(b"\n", 0, self.max_bytes + 1)
        if end >= 0:
            data = bytes(buf[:end])
            del buf[: end + 1]
            return Frame(data.rstrip(_TRAILERS))
        if len(buf) <= self.max_bytes:
            return None
        data = bytes(buf[: self.max_bytes])
        del buf[: self.max_bytes]
        self._skip_line = True
        return Frame(data.rstrip(_TRAILERS), truncated=True)

    def _cut(self, data: bytes) -> Frame:
        if len(data) > self.max_bytes:
            return Frame(data[: self.max_bytes], truncated=True)
        return Frame(data)


def datagram_frame(data: bytes, max_bytes: int) -> Frame | None:
    """One UDP datagram is one message (RFC 5426); trailing newlines and NULs dropped."""
    data = data.rstrip(_TRAILERS)
    if not data.strip():
        return None
    if len(data) > max_bytes:
        return Frame(data[:max_bytes], truncated=True)
    return Frame(data)
