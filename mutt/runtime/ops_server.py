"""``/healthz``, ``/readyz`` and ``/metrics`` for processes that are not HTTP functions.

Stream workers and the relay have no web server of their own; with
``MUTT_HEALTH_PORT`` set they get this small one, so Kubernetes probes and
Prometheus treat them like the functions.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson

from shared.metrics import render
from shared.readiness import is_ok

Checks = Callable[[], dict[str, str]]


def start_ops_server(
    host: str, port: int, alive: Callable[[], bool], ready: Checks
) -> ThreadingHTTPServer:
    """Serve in a daemon thread; returns the server (``shutdown()`` to stop)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/healthz":
                ok = alive()
                self._send(200 if ok else 503, {"status": "ok" if ok else "stalled"})
            elif self.path == "/readyz":
                checks = ready()
                ok = all(is_ok(v) for v in checks.values())
                self._send(
                    200 if ok else 503, {"status": "ok" if ok else "unavailable", "checks": checks}
                )
            elif self.path == "/metrics":
                body, ctype = render()
                self._raw(200, body, ctype)
            else:
                self._send(404, {"error": f"no route for GET {self.path}"})

        def _send(self, status: int, doc: object) -> None:
            self._raw(status, orjson.dumps(doc), "application/json")

        def _raw(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return  # probes every few seconds would drown the real logs

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="ops-server", daemon=True).start()
    return server
