"""``mutt syslog``: receive syslog over UDP and TCP, hand each message to the pipeline.

UDP is read by a thread of its own that does nothing but read
(``udp_receive``); TCP connections are served by one asyncio loop. Both only
queue what they read: parsing, encoding and sending happen in the pipeline's
threads (``pipeline``). The two transports meet a full queue differently: a
UDP datagram that finds no room is dropped (and counted) because UDP has no
way to say "wait", while a TCP connection simply stops being read until there
is room, so the sender (rsyslog's queue, say) holds its messages and nothing
is lost.

On SIGTERM / SIGINT the listeners close first (nothing new comes in), then
the pipeline gets the grace period to send what it holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from mutt.sources.events import ReceiveClock, syslog_event
from mutt.sources.framing import TcpFramer, datagram_frame
from mutt.sources.pipeline import SourcePipeline
from mutt.sources.sender import SenderStats
from mutt.sources.source_status import RECEIVE_BUFFER, SourceMonitor
from mutt.sources.syslog_parse import parse_syslog
from mutt.sources.udp_receive import (
    Received,
    UdpReceiver,
    describe_buffer,
    open_udp_socket,
    socket_inode,
)

log = logging.getLogger(__name__)

READ_CHUNK = 65_536
ROOM_POLL_SECONDS = 0.02
DEFAULT_RCVBUF = 8 * 1024 * 1024


@dataclass(frozen=True)
class ListenConfig:
    """Where to listen and how large a message may be."""

    source: str
    host: str = "127.0.0.1"
    udp_port: int | None = 5514  # None: no UDP listener; 0: any free port
    tcp_port: int | None = 5514
    max_message_bytes: int = 16_384
    udp_rcvbuf: int = DEFAULT_RCVBUF


class SyslogEncoder:
    """A received message → (its hostname, its CloudEvent encoded); ``None`` for a blank one."""

    def __init__(self, source: str, max_bytes: int) -> None:
        self.source = source
        self.max_bytes = max_bytes

    def __call__(self, item: Received) -> tuple[str, bytes] | None:
        data, peer, received_ns, cut = item
        frame = datagram_frame(data, self.max_bytes)
        if frame is None:
            return None
        parsed = parse_syslog(frame.data)
        if parsed is None:
            return None
        event = syslog_event(
            parsed,
            frame.data,
            peer=peer,
            source=self.source,
            received_ns=received_ns,
            truncated=cut or frame.truncated,
        )
        fields = event["data"]
        host = fields.get("hostname", "") if isinstance(fields, dict) else ""
        return str(host), orjson.dumps(event)


class SyslogServer:
    """The UDP reader and the TCP listener of one process."""

    def __init__(self, config: ListenConfig, pipeline: SourcePipeline) -> None:
        self.config = config
        self.pipeline = pipeline
        self.clock = ReceiveClock()
        self.addresses: dict[str, tuple[str, int]] = {}
        self.udp: UdpReceiver | None = None
        self.udp_buffer = 0
        self._tcp: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Bind both listeners (``OSError`` if a port is taken)."""
        cfg = self.config
        if cfg.udp_port is not None:
            sock, buffer = open_udp_socket(cfg.host, cfg.udp_port, cfg.udp_rcvbuf)
            self.udp = UdpReceiver(
                sock, cfg.max_message_bytes, self.clock.take, self.pipeline.put_datagrams
            )
            self.addresses["udp"] = sock.getsockname()[:2]
            self.udp_buffer = buffer.effective
            RECEIVE_BUFFER.labels(self.pipeline.name).set(buffer.effective)
            (log.warning if buffer.capped else log.info)("%s", describe_buffer(buffer))
        if cfg.tcp_port is not None:
            try:
                self._tcp = await asyncio.start_server(self._serve, cfg.host, cfg.tcp_port)
            except OSError:
                if self.udp is not None:
                    self.udp.sock.close()
                raise
            self.addresses["tcp"] = self._tcp.sockets[0].getsockname()[:2]
        if self.udp is not None:
            self.udp.start()

    def udp_socket(self) -> tuple[int, int] | None:
        """(inode, family) of the UDP socket, for the kernel's drop counter."""
        if self.udp is None:
            return None
        return socket_inode(self.udp.sock), int(self.udp.sock.family)

    async def stop(self) -> None:
        """Stop listening and reading; what was read is in the pipeline."""
        if self.udp is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.udp.stop)
        if self._tcp is not None:
            self._tcp.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        if self._tcp is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._tcp.wait_closed(), 1.0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        peer = writer.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        framer = TcpFramer(self.config.max_message_bytes)
        pipeline, take = self.pipeline, self.clock.take
        try:
            while True:
                while not pipeline.has_room():  # backpressure: leave the bytes in the kernel
                    await asyncio.sleep(ROOM_POLL_SECONDS)
                data = await reader.read(READ_CHUNK)
                frames = framer.feed(data) if data else framer.close()
                if frames:
                    base = take(len(frames))
                    pipeline.put_frames(
                        [(f.data, address, base + i, f.truncated) for i, f in enumerate(frames)]
                    )
                if not data:
                    return
        except (ConnectionError, OSError) as exc:
            log.info("syslog TCP connection from %s ended: %s", address, exc)
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()


class SyslogService:
    """Listeners + pipeline + monitor with an orderly stop; ``run`` blocks until stopped."""

    def __init__(
        self,
        config: ListenConfig,
        pipeline: SourcePipeline,
        grace: float,
        *,
        monitor: Callable[[SyslogServer], SourceMonitor] | None = None,
    ) -> None:
        self.server = SyslogServer(config, pipeline)
        self.pipeline = pipeline
        self.grace = grace
        self.started = threading.Event()
        self.monitor: SourceMonitor | None = None
        self._make_monitor = monitor or default_monitor
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    def run(
        self, *, handle_signals: bool = True, on_started: Callable[[], None] | None = None
    ) -> SenderStats:
        """Serve until SIGTERM / SIGINT (or ``request_stop``), then flush within the grace."""
        return asyncio.run(self._main(handle_signals, on_started))

    def request_stop(self) -> None:
        """Thread-safe: begin the orderly stop."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            loop.call_soon_threadsafe(stop.set)

    async def _main(
        self, handle_signals: bool, on_started: Callable[[], None] | None
    ) -> SenderStats:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._loop.add_signal_handler(sig, self._stop.set)
        self.pipeline.start()
        await self.server.start()
        self.monitor = self._make_monitor(self.server)
        self.monitor.start()
        listening = ", ".join(
            f"{proto} {host}:{port}" for proto, (host, port) in self.server.addresses.items()
        )
        log.info(
            "listening for syslog on %s; sending to %s (%s mode, %d lanes)",
            listening,
            self.pipeline.client.url,
            self.pipeline.mode,
            len(self.pipeline.lanes),
        )
        self.started.set()
        if on_started is not None:
            on_started()
        await self._stop.wait()
        log.info("stopping: listeners closed, flushing %d buffered events", self.pipeline.pending())
        await self.server.stop()
        stats = await self._loop.run_in_executor(None, self.pipeline.close, self.grace)
        await self._loop.run_in_executor(None, self.monitor.stop)
        log.info(
            "stopped: %d received, %d accepted, %d duplicates, %d refused by ingest, "
            "%d dropped (queue full), %d dropped by the kernel, %d lost at shutdown",
            self.pipeline.received,
            stats.accepted,
            stats.duplicates,
            stats.rejected,
            stats.dropped,
            self.monitor.kernel_drops,
            stats.lost,
        )
        return stats


def default_monitor(server: SyslogServer) -> SourceMonitor:
    """Kernel drops polled, counters not published (``mutt syslog`` passes its Redis)."""
    return SourceMonitor(
        "syslog",
        server.pipeline.snapshot,
        details=listen_details(server),
        udp_socket=server.udp_socket(),
        tick=server.pipeline.update_gauge,
    )


def listen_details(server: SyslogServer) -> dict[str, Any]:
    return {
        "source": server.config.source,
        "host": socket.gethostname(),
        "listening": {proto: f"{h}:{p}" for proto, (h, p) in server.addresses.items()},
        "udp_receive_buffer": server.udp_buffer,
        "lanes": len(server.pipeline.lanes),
    }
