"""A stand-in vendor API: a real HTTP server on 127.0.0.1 that records requests.

Each test scripts the answers (status, headers, body, delay) and then reads
back exactly what the sink sent: method, path, headers and body bytes.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from shared.models import (
    Alert,
    Event,
    Handling,
    Severity,
    Varbind,
    alert_id_for,
    event_id_for,
)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Recorded:
    method: str
    path: str
    headers: Message
    body: bytes
    at: float = field(default_factory=time.monotonic)  # when it arrived (monotonic clock)
    status: int = 0  # the status it was answered with

    def json(self) -> Any:
        return json.loads(self.body)


class VendorServer:
    """``replies`` are used in order, then ``default`` for every further request."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.replies: deque[Reply] = deque()
        self.default = Reply()
        self._released = threading.Event()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._httpd.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def reply(self, status: int, body: bytes | str = b"", **kwargs: Any) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.replies.append(Reply(status, data, **kwargs))

    def reset(self) -> None:
        """Forget requests and scripted replies; release any delayed answer."""
        self._released.set()
        self._released = threading.Event()
        with self._lock:
            self.requests.clear()
            self.replies.clear()
            self.default = Reply()

    def start(self) -> VendorServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._released.set()  # wake handlers that are delaying an answer
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def _next(self, recorded: Recorded) -> Reply:
        with self._lock:
            self.requests.append(recorded)
            reply = self.replies.popleft() if self.replies else self.default
            recorded.status = reply.status
            return reply

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                reply = server._next(Recorded(self.command, self.path, self.headers, body))
                released = server._released
                if reply.delay and released.wait(reply.delay):
                    return
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(reply.body)

            do_GET = do_POST = do_HEAD = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


EVENT_TIME = datetime(2025, 1, 15, 14, 30, 22, 250000, tzinfo=UTC)


def make_alert(
    severity: Severity = Severity.ERROR,
    *,
    ce_id: str = "evt-1",
    dedup_key: str = "core-router-01.dc1.example.com:rule-42:linkdown",
    summary: str = "core-router-01.dc1.example.com: Line protocol on Gi0/0/0 down",
    rule_id: int | Literal["unhandled"] = 42,
) -> Alert:
    """A realistic trap-derived alert (prod, page and ticket, team netops)."""
    event_id = event_id_for("/syslog/dc1", ce_id)
    event = Event(
        event_id=event_id,
        source="/syslog/dc1",
        id=ce_id,
        hostname="core-router-01.dc1.example.com",
        time=EVENT_TIME,
        message="%LINEPROTO-5-UPDOWN: Line protocol on Interface GigabitEthernet0/0/0, "
        "changed state to down",
        severity=severity,
        severity_name=severity.label,
        trap_oid="1.3.6.1.6.3.1.1.5.3",
        varbinds=[Varbind(oid="1.3.6.1.2.1.2.2.1.1.1", type="INTEGER", value="1")],
        source_type="cisco-ios",
        received_at=EVENT_TIME,
    )
    return Alert(
        alert_id=alert_id_for(event_id, str(rule_id)),
        event_id=event_id,
        rule_id=rule_id,
        handling=Handling.PAGE_AND_TICKET,
        team="netops",
        environment="prod",
        severity=severity,
        severity_name=severity.label,
        summary=summary,
        dedup_key=dedup_key,
        raised_at=EVENT_TIME,
        event=event,
    )
