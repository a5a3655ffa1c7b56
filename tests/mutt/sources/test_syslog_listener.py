"""The listener under load, functionally (no timing): bursts larger than one read,
ingest away while TCP keeps sending, and datagrams the kernel drops being counted
(in /metrics and in ``mutt status``). Real ingest, real Redis, real sockets."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
from collections import defaultdict

import orjson
import pytest
import redis
import requests

from mutt.cli import main as cli_main
from mutt.sources.udp_receive import MAX_BATCH
from shared.broker.keys import Keys
from shared.config import Settings
from tests.mutt.sources.test_syslog_server import running, send_udp
from tests.support.cli import in_process
from tests.support.processes import free_port, settings_env, stop, wait_http
from tests.support.sources import ingest_server, published, source_command, wait_for


def line(device: int, seq: int) -> bytes:
    return b"<187>Nov 24 13:00:00 rtr-%03d %%LINK-3-UPDOWN: Gi0/1 down seq %d" % (device, seq)


def seq_of(event: dict[str, object]) -> int:
    return int(str(event["message"]).rsplit(" ", 1)[1])


def test_a_burst_larger_than_one_read_arrives_exactly_once_in_each_devices_order(
    settings: Settings, r: redis.Redis, keys: Keys
) -> None:
    chunk = MAX_BATCH + MAX_BATCH // 2  # each burst takes at least two recvmmsg calls
    burst = 4 * chunk
    with ingest_server(settings) as url, running(url, rcvbuf=8 << 20) as run:
        udp = run.service.server.udp
        assert udp is not None and udp.reader.batched  # recvmmsg, on Linux
        for start in range(0, burst, chunk):
            # ~400 datagrams fit even a default (208 KiB) receive buffer: none is dropped
            # while the reader waits for the CPU, whatever the machine's rmem_max
            send_udp(run.address("udp"), *[line(s % 7, s) for s in range(start, start + chunk)])
            wait_for(lambda n=start + chunk: [{}] if udp.datagrams >= n else [], lambda d: True)
        events = wait_for(lambda: published(r, keys), lambda d: True, count=burst)
        stats = run.stop()
    seqs = [seq_of(e) for e in events]
    assert sorted(seqs) == list(range(burst))  # every one, once
    assert (stats.accepted, stats.duplicates, stats.dropped, stats.lost) == (burst, 0, 0, 0)
    by_device: dict[str, list[int]] = defaultdict(list)
    for event in events:
        by_device[str(event["hostname"])].append(seq_of(event))
    assert len(by_device) == 7
    for device, order in by_device.items():
        assert order == sorted(order), f"{device}'s events were reordered"


def test_tcp_holds_the_sender_back_while_ingest_is_away_and_loses_nothing(
    settings: Settings, r: redis.Redis, keys: Keys
) -> None:
    port = free_port()  # nothing listens there yet: ingest is "stopped"
    total = 20_000
    frames = [line(seq % 13, seq) for seq in range(total)]
    data = b"".join(b"%d %s" % (len(f), f) for f in frames)  # octet-counted, as omfwd sends
    with running(
        f"http://127.0.0.1:{port}/",
        lanes=2,
        batch_size=100,
        buffer_size=500,
        max_backoff=0.3,
    ) as run:
        sender_done = threading.Event()

        def send() -> None:
            with socket.create_connection(run.address("tcp"), timeout=60) as sock:
                sock.sendall(data)
            sender_done.set()

        threading.Thread(target=send, daemon=True).start()
        pipeline = run.service.pipeline
        # ingest away: the listener holds a bounded amount, the rest stays with the sender
        wait_for(lambda: [{}] if not pipeline.has_room() else [], lambda d: True)
        held = pipeline.pending()
        assert held < total // 4
        assert pipeline.stats().dropped == 0 and pipeline.stats().retries > 0
        assert published(r, keys) == []
        with ingest_server(settings, port):  # ingest is back
            events = wait_for(lambda: published(r, keys), lambda d: True, count=total, timeout=120)
            assert sender_done.wait(30)
            stats = run.stop()
    assert sorted(seq_of(e) for e in events) == list(range(total))
    assert (stats.accepted, stats.dropped, stats.lost) == (total, 0, 0)


@pytest.mark.slow
def test_kernel_drops_are_counted_in_metrics_and_in_mutt_status(
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    udp, health = free_port(), free_port()
    proc = subprocess.Popen(
        source_command(
            "syslog",
            *("--no-tcp", "--udp-port", str(udp), "--health-port", str(health)),
            *("--udp-rcvbuf", "1", "--ingest-url", "http://127.0.0.1:9/", "--grace", "1"),
        ),
        env={**settings_env(settings), "MUTT_LOG_LEVEL": "WARNING"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_http(f"http://127.0.0.1:{health}/healthz", proc)
        os.kill(proc.pid, signal.SIGSTOP)  # the reader cannot run: the kernel buffer fills
        try:
            send_udp(("127.0.0.1", udp), *[line(1, seq) for seq in range(500)])
        finally:
            os.kill(proc.pid, signal.SIGCONT)

        def kernel_drops() -> float:
            text = requests.get(f"http://127.0.0.1:{health}/metrics", timeout=5).text
            for row in text.splitlines():
                if row.startswith('mutt_source_kernel_drops_total{source="syslog"}'):
                    return float(row.split()[-1])
            return 0.0

        wait_for(lambda: [{}] if kernel_drops() > 0 else [], lambda d: True)
        dropped = kernel_drops()
        assert 0 < dropped < 500

        cli = in_process(settings, monkeypatch, capsys)

        def listed() -> list[dict[str, object]]:
            ran = cli("status", "--json")
            assert ran.code == 0, ran.err
            return [s for s in orjson.loads(ran.out)["sources"] if s["kernel_drops"]]

        (source,) = wait_for(listed, lambda s: s["instance"].endswith(f":{proc.pid}"))
        assert source["kind"] == "syslog" and source["listening"] == {"udp": f"127.0.0.1:{udp}"}
        assert source["kernel_drops"] > 0 and source["dropped_recently"] > 0
        text = cli("status").out
        assert "KERNEL DROPS" in text and f":{proc.pid}" in text
        assert text.count("KERNEL DROPS") == 1  # one table of listeners
        assert any(
            "dropped" in note for note in orjson.loads(cli("status", "--json").out)["attention"]
        )
    finally:
        assert stop(proc) == 0
    assert proc.stderr is not None
    assert b"kernel dropped" in proc.stderr.read()  # and the log says so


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--lanes", "0"], "argument --lanes: 0 must be at least 1"),
        (["--lanes", "65"], "argument --lanes: 65 lanes: at most 64"),
        (["--udp-rcvbuf", "4096k"], "argument --udp-rcvbuf: '4096k' is not a whole number"),
        (["--udp-rcvbuf", str(1 << 31)], "argument --udp-rcvbuf: 2147483648 is above"),
    ],
)
def test_bad_sizing_options_name_the_option(
    args: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli_main(["syslog", *args])
    assert exited.value.code == 2
    assert expected in capsys.readouterr().err
