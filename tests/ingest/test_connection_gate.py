"""A throttled client is refused at the door: ``mutt serve ingest`` as a process, raw sockets.

The flood comes from 127.0.0.1; 127.0.0.2 (the same machine, another
address) plays the other client and the metrics scraper. What the tests
prove: the first answer to a throttled address is a 429 that closes its
connection; its new connections are answered 429 before a byte of them is
read (nothing sent, an answer all the same, and ingest's request counters do
not move); other addresses are served; the window ends; behind a trusted
proxy no connection is refused at accept.
"""

from __future__ import annotations

import http.client
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared.config import Settings
from tests.support.processes import free_port, mutt, settings_env, stop, wait_http

pytestmark = pytest.mark.slow

KEY = "connection-gate-key"
FLOOD = "127.0.0.1"
OTHER = "127.0.0.2"
LIMIT = 3
EVENT = {"hostname": "r1", "message": "link down", "timestamp": "2025-01-01T00:00:00Z"}


class Server:
    def __init__(self, settings: Settings, tmp_path: Path, **env: str) -> None:
        secrets = tmp_path / "secrets"
        secrets.mkdir(parents=True)
        (secrets / "ingest_api_keys").write_text(KEY + "\n")
        self.port = free_port()
        self.proc = subprocess.Popen(
            mutt("serve", "ingest", "--host", "127.0.0.1", "--port", str(self.port)),
            env={
                **settings_env(settings),
                "MUTT_SECRETS_DIR": str(secrets),
                "MUTT_INGEST_AUTH_FAILURE_LIMIT": str(LIMIT),
                "WORKERS": "1",
                "THREADS": "4",
                **env,
            },
        )
        wait_http(f"http://127.0.0.1:{self.port}/healthz", self.proc)

    def connect(self, source: str = FLOOD) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), 10, (source, 0))
        sock.settimeout(10)
        return sock

    def counters(self) -> dict[str, float]:
        """ingest's counters, asked from the address that is not throttled."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, 10, (OTHER, 0))
        try:
            conn.request("GET", "/metrics")
            text = conn.getresponse().read().decode()
        finally:
            conn.close()
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    out[sample.name] = out.get(sample.name, 0.0) + sample.value
        return out


@pytest.fixture
def start(settings: Settings, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start a server (environment overrides as keywords); stopped after the test."""
    servers: list[Server] = []

    def started(**env: str) -> Server:
        servers.append(Server(settings, tmp_path / f"server-{len(servers)}", **env))
        return servers[-1]

    yield started
    for server in servers:
        stop(server.proc)


def post(key: str, forwarded_for: str | None = None) -> bytes:
    body = orjson.dumps(EVENT)
    head = f"POST /api/v2/ingest HTTP/1.1\r\nHost: ingest\r\nX-API-KEY: {key}\r\n"
    if forwarded_for:
        head += f"X-Forwarded-For: {forwarded_for}\r\n"
    head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def answer(sock: socket.socket, request: bytes | None = None) -> http.client.HTTPResponse:
    """Send ``request`` (if any) and read one answer from ``sock``."""
    if request is not None:
        sock.sendall(request)
    response = http.client.HTTPResponse(sock)
    response.begin()
    response.read()
    return response


def closed_by_server(sock: socket.socket) -> bool:
    """True once the server has closed ``sock`` (end of stream or reset)."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False  # still open: nothing came within the socket's timeout


def throttle(server: Server, source: str = FLOOD) -> socket.socket:
    """Fail LIMIT times on one kept-alive connection; return it, still open."""
    sock = server.connect(source)
    for _ in range(LIMIT):
        got = answer(sock, post("wrong"))
        assert got.status == 401
        assert got.getheader("Connection") == "keep-alive"
    return sock


def test_a_client_over_the_limit_gets_429_with_retry_after_and_a_closed_connection(
    start: Callable[..., Server],
) -> None:
    server = start()
    sock = throttle(server)
    got = answer(sock, post(KEY))  # even the right key: it is not read
    assert got.status == 429
    assert 1 <= int(got.getheader("Retry-After", "0")) <= 60
    assert got.getheader("Connection") == "close"
    assert closed_by_server(sock)  # it cannot go on over this connection
    sock.close()


@pytest.mark.parametrize("trusted", ["", "10.0.0.0/8"], ids=["no-proxies", "peer-not-a-proxy"])
def test_new_connections_of_a_throttled_address_are_answered_without_reaching_the_app(
    start: Callable[..., Server], trusted: str
) -> None:
    server = start(MUTT_INGEST_TRUSTED_PROXIES=trusted)
    throttle(server).close()
    before = server.counters()
    silent = server.connect()  # sends nothing at all
    got = answer(silent)
    assert got.status == 429
    assert int(got.getheader("Retry-After", "0")) >= 1
    assert got.getheader("Connection") == "close"
    assert closed_by_server(silent)
    silent.close()
    sock = server.connect()
    assert answer(sock, post(KEY)).status == 429
    sock.close()
    after = server.counters()
    refused = "mutt_ingest_connections_refused_total"
    assert after[refused] - before[refused] == 2
    for name in ("mutt_ingest_requests_total", "mutt_ingest_auth_throttled_total"):
        assert after[name] == before[name], name  # the app never saw them


def test_another_address_is_unaffected(start: Callable[..., Server]) -> None:
    server = start()
    throttle(server).close()
    sock = server.connect(OTHER)
    assert answer(sock, post("wrong")).status == 401  # counted on its own
    got = answer(sock, post(KEY))
    assert got.status == 202
    assert got.getheader("Connection") == "keep-alive"
    sock.close()
    flood = server.connect()
    assert answer(flood, post(KEY)).status == 429
    flood.close()


def test_after_the_window_the_address_is_admitted_again(start: Callable[..., Server]) -> None:
    server = start(MUTT_INGEST_AUTH_FAILURE_WINDOW_SECONDS="4")
    throttle(server).close()
    sock = server.connect()
    refused = answer(sock)
    assert refused.status == 429
    sock.close()
    time.sleep(int(refused.getheader("Retry-After", "0")))  # what a well-behaved client waits
    sock = server.connect()
    assert answer(sock, post(KEY)).status == 202
    sock.close()


def test_behind_a_trusted_proxy_no_connection_is_refused_at_accept(
    start: Callable[..., Server],
) -> None:
    """Even when the proxy's own address is throttled (its requests without
    X-Forwarded-For failed): it carries other clients, judged per request."""
    server = start(MUTT_INGEST_TRUSTED_PROXIES="127.0.0.0/8")
    proxy = server.connect()
    for _ in range(LIMIT):
        assert answer(proxy, post("wrong", "203.0.113.7")).status == 401
        assert answer(proxy, post("wrong")).status == 401  # counted under 127.0.0.1
    for forwarded_for in ("203.0.113.7", None):
        got = answer(proxy, post(KEY, forwarded_for))
        assert got.status == 429  # the per-request throttle
        assert got.getheader("Connection") == "keep-alive"  # the proxy's connection stays
    assert answer(proxy, post(KEY, "198.51.100.9")).status == 202
    proxy.close()
    fresh = server.connect()  # a new connection from the throttled 127.0.0.1
    assert answer(fresh, post(KEY, "198.51.100.9")).status == 202
    assert answer(fresh, post(KEY, "203.0.113.7")).status == 429
    fresh.close()
    assert server.counters()["mutt_ingest_connections_refused_total"] == 0
