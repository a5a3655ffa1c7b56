"""The gunicorn worker ``mutt serve ingest`` runs: gthread, refusing throttled clients early.

gunicorn's threaded worker, which functions-framework chooses anyway, with two
changes that keep a throttled direct client from costing an HTTP parse per
attempt (``connection_gate`` says why and who counts as direct):

- at accept, a connection from a throttled address is answered 429 and closed
  before it reaches a thread or the HTTP parser (``_Screened``);
- a request that arrives from a throttled address on a connection opened
  before it was throttled (keep-alive) is answered with ``Connection: close``
  (the per-request gate gives the 429), so a client cannot go on flooding over
  one connection.
"""

from __future__ import annotations

import errno
import socket
from typing import Any

from gunicorn.workers.gthread import ThreadWorker  # type: ignore[import-untyped]

from functions.ingest.connection_gate import refuse, retry_after

# Refusals per wake-up of the listener at most: a flood faster than this
# worker refuses must not keep it from the rest of its event loop.
BURST = 64


class _Screened:
    """A listening socket whose ``accept`` answers throttled peers itself and
    returns only the connections to serve (``EAGAIN`` when none is waiting)."""

    def __init__(self, listener: socket.socket) -> None:
        self._listener = listener

    def accept(self) -> tuple[socket.socket, Any]:
        for _ in range(BURST):
            sock, peer = self._listener.accept()  # EAGAIN when none waits: gunicorn ignores it
            wait = retry_after(peer)
            if wait is None:
                return sock, peer
            refuse(sock, wait)
        raise BlockingIOError(errno.EAGAIN, "more connections wait: back to the event loop")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._listener, name)


class IngestWorker(ThreadWorker):  # type: ignore[misc]
    """gthread with the throttle at the door (``worker_class`` of ``mutt serve ingest``)."""

    def accept(self, *args: Any) -> None:
        # gunicorn 23 calls accept(server, listener), later ones accept(listener).
        *before, listener = args
        super().accept(*before, _Screened(listener))

    def handle_request(self, req: Any, conn: Any) -> bool:
        if retry_after(conn.client) is not None:
            req.must_close = True  # gunicorn answers "Connection: close" and closes
        return bool(super().handle_request(req, conn))
