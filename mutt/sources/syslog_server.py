"""``mutt syslog``: receive syslog over UDP and TCP, hand each message to the sender.

One asyncio loop serves both transports; parsing is cheap enough to run in
it. The two transports meet a full buffer differently: a UDP datagram that
finds no room is dropped (and counted) because UDP has no way to say "wait",
while a TCP connection simply stops being read until there is room, so the
sender (rsyslog's queue, say) holds its messages and nothing is lost.

On SIGTERM / SIGINT the listeners close first (nothing new comes in), then
the sender gets the grace period to empty the buffer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from mutt.sources.events import ReceiveClock, syslog_event
from mutt.sources.framing import Frame, TcpFramer, datagram_frame
from mutt.sources.sender import SOURCE_EVENTS, BatchSender, SenderStats
from mutt.sources.syslog_parse import parse_syslog

log = logging.getLogger(__name__)

READ_CHUNK = 65_536
ROOM_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class ListenConfig:
    """Where to listen and how large a message may be."""

    source: str
    host: str = "127.0.0.1"
    udp_port: int | None = 5514  # None: no UDP listener; 0: any free port
    tcp_port: int | None = 5514
    max_message_bytes: int = 16_384


class SyslogIntake:
    """A frame from a peer → a CloudEvent in the sender's buffer."""

    def __init__(self, sender: BatchSender, source: str) -> None:
        self.sender = sender
        self.source = source
        self.clock = ReceiveClock()
        self.received = 0

    def encode(self, frame: Frame, peer: str) -> bytes | None:
        """The event for one frame, encoded; ``None`` for a blank frame."""
        parsed = parse_syslog(frame.data)
        if parsed is None:
            return None
        self.received += 1
        SOURCE_EVENTS.labels(self.sender.name, "received").inc()
        event = syslog_event(
            parsed,
            frame.data,
            peer=peer,
            source=self.source,
            received_ns=self.clock.now_ns(),
            truncated=frame.truncated,
        )
        return orjson.dumps(event)

    def offer_datagram(self, frame: Frame, peer: str) -> None:
        body = self.encode(frame, peer)
        if body is not None:
            self.sender.offer(body)

    async def offer_stream(self, frame: Frame, peer: str) -> None:
        """Wait for room rather than drop: the TCP peer is held back meanwhile."""
        body = self.encode(frame, peer)
        if body is None:
            return
        while not self.sender.has_room() and not self.sender.stopping:
            await asyncio.sleep(ROOM_POLL_SECONDS)
        self.sender.offer(body)


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, intake: SyslogIntake, max_bytes: int) -> None:
        self.intake = intake
        self.max_bytes = max_bytes

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        frame = datagram_frame(data, self.max_bytes)
        if frame is not None:
            self.intake.offer_datagram(frame, str(addr[0]))

    def error_received(self, exc: Exception) -> None:
        log.warning("syslog UDP receive error: %s", exc)


class SyslogServer:
    """The UDP and TCP listeners of one process."""

    def __init__(self, config: ListenConfig, sender: BatchSender) -> None:
        self.config = config
        self.intake = SyslogIntake(sender, config.source)
        self.addresses: dict[str, tuple[str, int]] = {}
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Bind both listeners (``OSError`` if a port is taken)."""
        cfg = self.config
        loop = asyncio.get_running_loop()
        if cfg.udp_port is not None:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self.intake, cfg.max_message_bytes),
                local_addr=(cfg.host, cfg.udp_port),
            )
            self._udp = transport
            self.addresses["udp"] = transport.get_extra_info("sockname")[:2]
        if cfg.tcp_port is not None:
            try:
                self._tcp = await asyncio.start_server(self._serve, cfg.host, cfg.tcp_port)
            except OSError:
                if self._udp is not None:
                    self._udp.close()
                raise
            self.addresses["tcp"] = self._tcp.sockets[0].getsockname()[:2]

    async def stop(self) -> None:
        """Stop listening and reading; frames already read are in the buffer."""
        if self._udp is not None:
            self._udp.close()
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
        try:
            while True:
                data = await reader.read(READ_CHUNK)
                if not data:
                    for frame in framer.close():
                        await self.intake.offer_stream(frame, address)
                    return
                for frame in framer.feed(data):
                    await self.intake.offer_stream(frame, address)
        except (ConnectionError, OSError) as exc:
            log.info("syslog TCP connection from %s ended: %s", address, exc)
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()


class SyslogService:
    """Listeners + sender with an orderly stop; ``run`` blocks until stopped."""

    def __init__(self, config: ListenConfig, sender: BatchSender, grace: float) -> None:
        self.server = SyslogServer(config, sender)
        self.sender = sender
        self.grace = grace
        self.started = threading.Event()
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
        await self.server.start()
        self.sender.start()
        listening = ", ".join(
            f"{proto} {host}:{port}" for proto, (host, port) in self.server.addresses.items()
        )
        log.info(
            "listening for syslog on %s; sending to %s (%s mode)",
            listening,
            self.sender.client.url,
            self.sender.mode,
        )
        self.started.set()
        if on_started is not None:
            on_started()
        await self._stop.wait()
        log.info("stopping: listeners closed, flushing %d buffered events", self.sender.pending())
        await self.server.stop()
        stats = await self._loop.run_in_executor(None, self.sender.close, self.grace)
        log.info(
            "stopped: %d received, %d accepted, %d duplicates, %d refused by ingest, "
            "%d dropped (buffer full), %d lost at shutdown",
            self.server.intake.received,
            stats.accepted,
            stats.duplicates,
            stats.rejected,
            stats.dropped,
            stats.lost,
        )
        return stats
