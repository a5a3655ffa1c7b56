"""A local webhook receiver for the benchmarks: counts what arrives, by ``Idempotency-Key``.

Run: ``python -m bench.webhook_sink --port P``. A minimal asyncio HTTP/1.1
server (keep-alive, no framework), so the receiver costs far less per
request than the sender and the benchmark measures the sending side.

* ``POST`` anything: ``200``, its ``Idempotency-Key`` recorded with the
  receive time;
* ``GET /ids``: ``{"received": n, "ids": [...], "at": [...]}``, every receipt,
  duplicates included, ``at`` in Unix seconds;
* ``DELETE /ids``: forget everything; ``GET`` anything else: ``200``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import time
from collections.abc import Sequence

import orjson

OK_EMPTY = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


class Receipts:
    def __init__(self) -> None:
        self.ids: list[str] = []
        self.at: list[float] = []


def _header(head: bytes, name: bytes) -> bytes | None:
    for line in head.split(b"\r\n")[1:]:
        key, sep, value = line.partition(b":")
        if sep and key.strip().lower() == name:
            return value.strip()
    return None


class Receiver(asyncio.Protocol):
    def __init__(self, receipts: Receipts) -> None:
        self.receipts = receipts
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end]
            length = int(_header(head, b"content-length") or b"0")
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            self._answer(head)

    def _answer(self, head: bytes) -> None:
        assert self.transport is not None
        method, _, rest = head.partition(b" ")
        path = rest.split(b" ", 1)[0]
        if method == b"POST":
            key = _header(head, b"idempotency-key") or b""
            self.receipts.ids.append(key.decode())
            self.receipts.at.append(time.time())
            self.transport.write(OK_EMPTY)
        elif method == b"DELETE":
            self.receipts.ids.clear()
            self.receipts.at.clear()
            self.transport.write(OK_EMPTY)
        elif path == b"/ids":
            body = orjson.dumps(
                {
                    "received": len(self.receipts.ids),
                    "ids": self.receipts.ids,
                    "at": self.receipts.at,
                }
            )
            self.transport.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
        else:
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    receipts = Receipts()
    server = await loop.create_server(lambda: Receiver(receipts), host, port)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
