"""Read UDP datagrams as fast as the kernel delivers them, and count what it could not.

A datagram the kernel finds no room for in the socket's receive buffer is
gone for good, so the reading thread does nothing but read: many datagrams
per system call (``recvmmsg``), one clock read per call, and straight into
the intake queue; parsing and sending happen in other threads. Each system
call releases the GIL once for a whole batch, which matters because the
threads that parse and send hold it most of the time: a reader that
released it once per datagram would wait for it once per datagram.

Python's ``socket`` module has no ``recvmmsg`` and no maintained package on
PyPI provides one (``pysockmmsg`` 0.0.2, 2021, is the only candidate), so
it is called from libc through ``ctypes``, which releases the GIL around the
call. Where libc has none (not Linux), the reader falls back to one
``recvfrom`` per datagram, draining the socket before it waits again.

The receive buffer is sized at start (``SO_RCVBUF``); the kernel caps it at
``net.core.rmem_max`` and the effective size is logged when it was capped.
Kernel drops are read from ``/proc/net/udp`` (the ``drops`` column of this
socket's inode) by ``kernel_drops``.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

MSG_WAITFORONE = 0x10000
READ_TIMEOUT_SECONDS = 0.25  # how soon the reader notices a stop request
NAME_BYTES = 32  # sockaddr_in6 is 28
MAX_BATCH = 256
MAX_BATCH_BUFFER_BYTES = 8 * 1024 * 1024

# (message bytes, sender address, receive time ns, already cut to the size limit): what the
# readers hand to the intake queue; a datagram is framed (and cut) later, so never marked
Received = tuple[bytes, str, int, bool]


@dataclass(frozen=True)
class ReceiveBuffer:
    """What was asked of ``SO_RCVBUF`` and what the kernel gave (both as it reports them)."""

    requested: int
    effective: int

    @property
    def capped(self) -> bool:
        # Linux doubles the value set (for its own bookkeeping) and reports the double
        return self.effective < self.requested * 2


def open_udp_socket(host: str, port: int, rcvbuf: int) -> tuple[socket.socket, ReceiveBuffer]:
    """A bound, blocking UDP socket with a read timeout and the receive buffer sized."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        effective = int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))
        sock.bind((host, port))
        sock.setblocking(True)
        seconds = int(READ_TIMEOUT_SECONDS)
        micros = int((READ_TIMEOUT_SECONDS - seconds) * 1_000_000)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", seconds, micros))
    except OSError:
        sock.close()
        raise
    return sock, ReceiveBuffer(rcvbuf, effective)


def describe_buffer(buffer: ReceiveBuffer) -> str:
    """One log line: the effective size, and how to get the asked one when it was capped."""
    got = buffer.effective // 2
    if not buffer.capped:
        return f"UDP receive buffer {got:,} bytes (SO_RCVBUF)"
    return (
        f"UDP receive buffer capped by the kernel: asked {buffer.requested:,} bytes, got"
        f" {got:,}; raise net.core.rmem_max (sysctl -w net.core.rmem_max={buffer.requested})"
        " to absorb longer bursts"
    )


# ---------------------------------------------------------------- recvmmsg via ctypes


class _Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.POINTER(_Iovec)),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    ]


class _Mmsghdr(ctypes.Structure):
    _fields_ = [("msg_hdr", _Msghdr), ("msg_len", ctypes.c_uint)]


def _libc_recvmmsg() -> Callable[..., int] | None:
    """libc's ``recvmmsg`` (GIL released during the call), or ``None`` where there is none."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.recvmmsg
    except (OSError, AttributeError):
        return None
    fn.argtypes = [
        ctypes.c_int,
        ctypes.POINTER(_Mmsghdr),
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_void_p,
    ]
    fn.restype = ctypes.c_int
    return fn


_RECVMMSG = _libc_recvmmsg()


class _PeerNames:
    """sockaddr bytes -> printable address, cached (a site has few senders)."""

    def __init__(self, limit: int = 65_536) -> None:
        self._names: dict[bytes, str] = {}
        self._limit = limit

    def __call__(self, raw: bytes) -> str:
        name = self._names.get(raw)
        if name is None:
            name = _sockaddr_host(raw)
            if len(self._names) >= self._limit:
                self._names.clear()
            self._names[raw] = name
        return name


def _sockaddr_host(raw: bytes) -> str:
    family = int.from_bytes(raw[:2], "little") if len(raw) >= 2 else 0
    if family == socket.AF_INET and len(raw) >= 8:
        return socket.inet_ntop(socket.AF_INET, raw[4:8])
    if family == socket.AF_INET6 and len(raw) >= 24:
        return socket.inet_ntop(socket.AF_INET6, raw[8:24])
    return ""


class BatchReader:
    """``read()`` returns the datagrams waiting (at least one, or none after the read timeout)."""

    def __init__(self, sock: socket.socket, max_bytes: int, clock: Callable[[int], int]) -> None:
        self.sock = sock
        self.clock = clock
        self.size = max_bytes + 1  # one byte more: an over-long datagram shows as such
        self.batch = max(1, min(MAX_BATCH, MAX_BATCH_BUFFER_BYTES // self.size))
        self.peers = _PeerNames()
        self.batched = _RECVMMSG is not None and os.name == "posix"
        if self.batched:
            self._setup()

    def _setup(self) -> None:
        n, size = self.batch, self.size
        self._data = ctypes.create_string_buffer(n * size)
        self._names = ctypes.create_string_buffer(n * NAME_BYTES)
        self._iovs = (_Iovec * n)()
        self._msgs = (_Mmsghdr * n)()
        data_at, names_at = ctypes.addressof(self._data), ctypes.addressof(self._names)
        for i in range(n):
            self._iovs[i].iov_base = data_at + i * size
            self._iovs[i].iov_len = size
            hdr = self._msgs[i].msg_hdr
            hdr.msg_name = names_at + i * NAME_BYTES
            hdr.msg_namelen = NAME_BYTES
            hdr.msg_iov = ctypes.pointer(self._iovs[i])
            hdr.msg_iovlen = 1
        self._data_view = memoryview(self._data).cast("B")
        self._names_view = memoryview(self._names).cast("B")

    def read(self) -> list[Received]:
        """Block up to the socket's read timeout for the first datagram, then take what waits."""
        if self.batched:
            return self._read_batch()
        return self._read_each()

    def _read_batch(self) -> list[Received]:
        assert _RECVMMSG is not None
        count = _RECVMMSG(self.sock.fileno(), self._msgs, self.batch, MSG_WAITFORONE, None)
        if count < 0:
            code = ctypes.get_errno()
            if code in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
                return []
            raise OSError(code, os.strerror(code))
        base = self.clock(count)
        size, data, names, msgs = self.size, self._data_view, self._names_view, self._msgs
        out: list[Received] = []
        for i in range(count):
            msg = msgs[i]
            hdr = msg.msg_hdr
            start = i * size
            name_at = i * NAME_BYTES
            peer = self.peers(bytes(names[name_at : name_at + hdr.msg_namelen]))
            out.append((bytes(data[start : start + msg.msg_len]), peer, base + i, False))
            hdr.msg_namelen = NAME_BYTES
        return out

    def _read_each(self) -> list[Received]:
        raw: list[tuple[bytes, str]] = []
        try:
            data, addr = self.sock.recvfrom(self.size)
            raw.append((data, str(addr[0])))
            while len(raw) < self.batch:
                data, addr = self.sock.recvfrom(self.size, socket.MSG_DONTWAIT)
                raw.append((data, str(addr[0])))
        except (BlockingIOError, TimeoutError, InterruptedError):
            pass
        if not raw:
            return []
        base = self.clock(len(raw))
        return [(data, peer, base + i, False) for i, (data, peer) in enumerate(raw)]


class UdpReceiver:
    """The reading thread: ``BatchReader.read`` → ``deliver``, until ``stop``."""

    def __init__(
        self,
        sock: socket.socket,
        max_bytes: int,
        clock: Callable[[int], int],
        deliver: Callable[[list[Received]], None],
    ) -> None:
        self.sock = sock
        self.reader = BatchReader(sock, max_bytes, clock)
        self.deliver = deliver
        self.datagrams = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="syslog-udp-reader", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        """Stop reading (within the read timeout) and close the socket."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(READ_TIMEOUT_SECONDS * 4 + 1.0)
        self.sock.close()

    def _run(self) -> None:
        read, deliver = self.reader.read, self.deliver
        while not self._stop.is_set():
            try:
                batch = read()
            except OSError as exc:
                if self._stop.is_set():
                    return
                log.warning("syslog UDP receive error: %s", exc)
                time.sleep(0.01)
                continue
            if batch:
                self.datagrams += len(batch)
                deliver(batch)


def socket_inode(sock: socket.socket) -> int:
    return os.fstat(sock.fileno()).st_ino


def kernel_drops(inode: int, family: int = socket.AF_INET) -> int | None:
    """Datagrams the kernel dropped for the socket ``inode`` (``/proc/net/udp`` drops column).

    ``None`` where the table is unreadable (not Linux) or the socket is not in it.
    """
    table = Path("/proc/net/udp6" if family == socket.AF_INET6 else "/proc/net/udp")
    wanted = str(inode)
    try:
        lines = table.read_text().splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) >= 13 and fields[9] == wanted:
            try:
                return int(fields[-1])
            except ValueError:
                return None
    return None
