"""Paced syslog over UDP from its own process: ``rate`` messages/s for ``seconds``.

Run: ``python -m bench.syslog_load HOST:PORT --rate 10000 --seconds 4 --tag T``.
Messages go out in 5 ms ticks (``rate / 200`` per tick, the remainder carried), each
tick due at ``start + k * 5 ms`` whatever happened before (open loop). Lines look like
what routers send: RFC 3164 with a hostname out of ``--devices`` (200), a Cisco
mnemonic, and ``<tag> <sequence>`` at the end so a receiver's output can be counted.
Prints one JSON line: sent, seconds, offered rate, and the worst lag behind schedule.
"""

from __future__ import annotations

import argparse
import socket
import time
from collections.abc import Sequence

import orjson

TICK = 0.005
LINKS = ("UPDOWN", "CHANGED")


def line(tag: str, seq: int, devices: int) -> bytes:
    device = seq % devices
    return (
        f"<187>Nov 24 13:00:00 rtr-{device:03d}.bench.example %LINK-3-{LINKS[seq % 2]}: "
        f"Interface Gi0/{seq % 48}, changed state to down {tag} {seq}"
    ).encode()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("target", help="HOST:PORT")
    parser.add_argument("--rate", type=float, required=True, help="messages per second")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--tag", required=True)
    parser.add_argument("--devices", type=int, default=200)
    args = parser.parse_args(argv)
    host, _, port = args.target.rpartition(":")
    address = (host, int(port))
    total = int(args.rate * args.seconds)
    lines = [line(args.tag, seq, args.devices) for seq in range(total)]
    per_tick = args.rate * TICK
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * 1024 * 1024)
    sent = 0
    worst_lag = 0.0
    start = time.monotonic() + 0.05
    tick = 0
    while sent < total:
        due = start + tick * TICK
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        else:
            worst_lag = max(worst_lag, -pause)
        tick += 1
        until = min(total, int(tick * per_tick))
        for k in range(sent, until):
            while True:
                try:
                    sock.sendto(lines[k], address)
                    break
                except BlockingIOError:  # our own send buffer: wait, never skip
                    time.sleep(0.0005)
        sent = max(sent, until)
    seconds = time.monotonic() - start
    sock.close()
    doc = {
        "sent": sent,
        "seconds": seconds,
        "offered_rate": sent / seconds if seconds > 0 else 0.0,
        "worst_lag_ms": worst_lag * 1000,
    }
    print(orjson.dumps(doc).decode(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
