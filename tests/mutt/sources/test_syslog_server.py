"""The syslog listeners on real sockets, feeding the real ingest (in this process)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis

from mutt.sources.pipeline import SourcePipeline
from mutt.sources.sender import IngestClient, SenderConfig, SenderStats
from mutt.sources.syslog_server import ListenConfig, SyslogEncoder, SyslogService
from mutt.sources.udp_receive import kernel_drops
from shared.broker.keys import Keys
from shared.config import Settings
from tests.support.sources import ingest_server, published, wait_for


class Running:
    """A ``SyslogService`` served by a thread, as ``mutt syslog`` serves it."""

    def __init__(self, service: SyslogService) -> None:
        self.service = service
        self.stats: SenderStats | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.stats = self.service.run(handle_signals=False)

    def address(self, proto: str) -> tuple[str, int]:
        return self.service.server.addresses[proto]

    def stop(self) -> SenderStats:
        self.service.request_stop()
        self.thread.join(15)
        assert self.stats is not None, "the service did not stop"
        return self.stats


@contextmanager
def running(url: str, lanes: int = 4, rcvbuf: int = 1 << 20, **sender: object) -> Iterator[Running]:
    config = SenderConfig(**{"flush_interval": 0.05, **sender})  # type: ignore[arg-type]
    client = IngestClient(url, None, timeout=1.0)
    listen = ListenConfig(source="/mutt/syslog/test", udp_port=0, tcp_port=0, udp_rcvbuf=rcvbuf)
    encoder = SyslogEncoder(listen.source, listen.max_message_bytes)
    pipeline = SourcePipeline(encoder, client, config, lanes=lanes)
    service = SyslogService(listen, pipeline, grace=1.0)
    run = Running(service)
    run.thread.start()
    assert service.started.wait(10), "the listeners did not start"
    try:
        yield run
    finally:
        if run.thread.is_alive():
            run.stop()


@pytest.fixture
def ingest(settings: Settings) -> Iterator[str]:
    with ingest_server(settings) as url:  # batches: ingest's default
        yield url


def send_udp(address: tuple[str, int], *lines: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for line in lines:
            sock.sendto(line, address)


def send_tcp(address: tuple[str, int], data: bytes) -> None:
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(data)


def test_udp_and_tcp_lines_become_events(ingest: str, r: redis.Redis, keys: Keys) -> None:
    with running(ingest) as run:
        send_udp(
            run.address("udp"),
            b"<189>45: *Mar  1 18:46:11.123: %LINK-3-UPDOWN: Interface Gi0/1, "
            b"changed state to down",
            b"<13>1 2025-01-20T12:00:00Z app-host app 1 - - udp 5424",
        )
        counted = b"<13>Jan 20 12:00:00 oc-host x: y"
        send_tcp(
            run.address("tcp"),
            b"<13>Jan 20 12:00:00 lf-host app: newline framed\n"
            + b"%d %s" % (len(counted), counted)
            + b"<13>Jan 20 12:00:00 lf-host app: same line\n" * 2,
        )
        got = wait_for(lambda: published(r, keys), lambda d: True, count=6)
        stats = run.stop()
    by_message = {d["message"]: d for d in got}
    cisco = by_message["%LINK-3-UPDOWN: Interface Gi0/1, changed state to down"]
    assert cisco["hostname"] == "127.0.0.1"  # no hostname in the line: the sender's address
    assert cisco["severity"] == 5 and cisco["source_type"] == "cisco-ios"
    assert cisco["attributes"]["cisco_mnemonic"] == "UPDOWN"
    assert by_message["udp 5424"]["hostname"] == "app-host"
    assert by_message["newline framed"]["hostname"] == "lf-host"
    assert by_message["y"]["hostname"] == "oc-host"
    # the same line twice is two events (distinct receive times), not a duplicate
    assert sum(d["message"] == "same line" for d in got) == 2
    assert (stats.accepted, stats.duplicates, stats.dropped, stats.lost) == (6, 0, 0, 0)


def test_a_full_buffer_drops_udp_but_holds_tcp_back() -> None:
    # ingest unreachable: nothing leaves; the lane holds 2, the encoder what it took, the
    # queue 2, and every other datagram is dropped and counted
    with running(
        "http://127.0.0.1:9/", lanes=1, batch_size=1, buffer_size=2, max_backoff=0.2
    ) as run:
        sent = 1000
        send_udp(run.address("udp"), *[b"<13>udp %d" % i for i in range(sent)])
        pipeline = run.service.pipeline
        udp, inode = run.service.server.udp, run.service.server.udp_socket()
        assert udp is not None and inode is not None

        def read_all() -> bool:  # every datagram read (on a stalled machine: some dropped)
            return udp.datagrams + (kernel_drops(*inode) or 0) >= sent

        wait_for(lambda: [{}] if read_all() else [], lambda d: True)
        deadline = time.monotonic() + 60  # stuck: fill it up (a stalled kernel may drop some)
        while pipeline.pending() < 4 and time.monotonic() < deadline:
            send_udp(run.address("udp"), b"<13>more")
            time.sleep(0.05)
        assert pipeline.pending() >= 4, pipeline.pending()
        dropped = pipeline.stats().dropped
        assert dropped >= udp.datagrams - 2 - 256 - 2 > 0  # queue + one encoder chunk + the lane
        assert pipeline.pending() + dropped == udp.datagrams
        while pipeline.has_room():  # the encoder took the queue's last: fill it again
            before = udp.datagrams
            deadline = time.monotonic() + 60
            while udp.datagrams == before and time.monotonic() < deadline:
                send_udp(run.address("udp"), b"<13>one more")  # UDP may lose one: send again
                time.sleep(0.2)
            assert udp.datagrams > before
        dropped = pipeline.stats().dropped
        send_tcp(run.address("tcp"), b"".join(b"<13>tcp %d\n" % i for i in range(5)))
        # TCP is not read while there is no room: nothing more is dropped
        assert not pipeline.has_room() and pipeline.stats().dropped == dropped
        held = pipeline.pending()
        stats = run.stop()
    assert stats.lost == held  # ingest never came back within the grace period
    assert stats.dropped == dropped


def test_sigterm_flushes_the_buffer(ingest: str, r: redis.Redis, keys: Keys) -> None:
    with running(ingest, flush_interval=60) as run:  # nothing would be sent for a minute
        send_udp(run.address("udp"), *[b"<13>pending %d" % i for i in range(3)])
        wait_for(lambda: [{}] * run.service.pipeline.pending(), lambda d: True, count=3, timeout=5)
        assert published(r, keys) == []
        stats = run.stop()
    assert (stats.accepted, stats.lost) == (3, 0)
    assert sorted(d["message"] for d in published(r, keys)) == [f"pending {i}" for i in range(3)]
