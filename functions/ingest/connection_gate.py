"""A throttled client's connections, refused before a byte of them is read.

A bad-key flood answered 429 inside gunicorn still costs gunicorn's reading
and parsing of every request: about a fifth of a good request's CPU, far from
the tenth issue 24 allows (docs/reliability.md#a-flood-of-bad-keys). So once
an address is throttled, its first request is answered 429 with
``Connection: close`` and every new connection from it is answered at accept
time: a canned 429 written to the socket, the socket closed, no parsing, no
Flask. Only a direct client is judged this way: when the peer is a trusted
proxy the client is known only from each request's X-Forwarded-For, and the
per-request gate (``throttle_gate``) answers instead.

The throttle consulted is the one the request path counts failures in (the
process's ``Ingest``), so both agree on who is throttled and until when.
"""

from __future__ import annotations

import functools
import socket
import time
from email.utils import formatdate

import orjson

from functions.ingest import app as ingest_app
from functions.ingest.client_address import client_at_connect
from functions.ingest.contract import API_VERSION
from functions.ingest.throttle_gate import MESSAGE
from shared.metrics import CONNECTIONS_REFUSED


def retry_after(peer: object) -> int | None:
    """Seconds a connection from ``peer`` (the address ``accept`` gave) must wait,
    or ``None`` to serve it: not throttled, a trusted proxy, or no throttle yet."""
    ingest = ingest_app._ingest
    if ingest is None or not isinstance(peer, tuple) or not peer:
        return None  # no request served yet (nothing failed), or a Unix socket
    client = client_at_connect(str(peer[0]), ingest.proxies)
    if client is None:
        return None
    return ingest.throttle.retry_after(client)


def refuse(sock: socket.socket, wait: int) -> None:
    """Answer 429 on a connection nothing was read from, and close it.

    One non-blocking send (the answer is far smaller than a socket buffer; a
    peer that cannot take it loses it, which costs us nothing) and a close.
    A request already in the socket makes the close a reset: the 429 was sent
    before it and a client reads it first.
    """
    try:
        sock.send(answer(wait, int(time.time())), socket.MSG_DONTWAIT)
    except OSError:
        pass  # gone already, or its buffer is full: the close is the answer
    finally:
        sock.close()
    CONNECTIONS_REFUSED.inc()


@functools.lru_cache(maxsize=128)
def answer(wait: int, now: int) -> bytes:
    """The canned 429 (the same body as the per-request gate's), once per second and wait."""
    body = orjson.dumps({"error": MESSAGE, "retry_after_seconds": wait})
    head = (
        "HTTP/1.1 429 Too Many Requests\r\n"
        f"Date: {formatdate(now, usegmt=True)}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Retry-After: {wait}\r\n"
        f"X-MUTT-API-Version: {API_VERSION}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body
