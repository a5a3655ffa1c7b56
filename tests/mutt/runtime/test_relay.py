"""``mutt relay`` in front of ``mutt serve``: the Knative path, through processes.

Batches and a window of requests in flight; an unreachable function backs
off and loses nothing; a relay killed mid-window loses and doubles nothing;
foreign targets get single binary-mode events; two function instances
behind one URL both get work.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest
import redis
import requests

from shared.broker import streams
from shared.broker.keys import Keys
from shared.config import Settings
from shared.envelope import FIELD, encode
from tests.support.factories import accepted_event
from tests.support.processes import free_port, mutt, settings_env, stop, wait_http
from tests.support.resilience import wait_until

pytestmark = pytest.mark.slow

LINK_DOWN = "%LINK-3-UPDOWN: Interface Gi0/{n}, changed state to down"


class Procs:
    """Processes of one test, stopped at the end (SIGTERM, then kill)."""

    def __init__(self, settings: Settings) -> None:
        self.env = {
            **settings_env(settings),
            "MUTT_RELAY_BATCH_SIZE": "25",
            "MUTT_WORKER_BLOCK_MS": "100",
        }
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str, **env: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(mutt(*args), env={**self.env, **env})
        self.procs.append(proc)
        return proc

    def serve(self, function: str, port: int | None = None) -> str:
        port = port or free_port()
        proc = self.start("serve", function, "--port", str(port))
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/healthz", proc)
        return url

    def relay(self, *to: str, window: int = 4) -> tuple[subprocess.Popen[bytes], str]:
        health = free_port()
        args = [a for target in to for a in ("--to", target)]
        proc = self.start("relay", *args, "--window", str(window), MUTT_HEALTH_PORT=str(health))
        url = f"http://127.0.0.1:{health}"
        wait_http(url + "/healthz", proc)
        return proc, url


@pytest.fixture
def procs(settings: Settings) -> Iterator[Procs]:
    p = Procs(settings)
    yield p
    for proc in reversed(p.procs):
        stop(proc)


def publish_link_downs(r: redis.Redis, keys: Keys, n: int, offset: int = 0) -> None:
    """``n`` accepted events, each from its own host: each raises one alert."""
    events = [
        accepted_event(offset + i, LINK_DOWN.format(n=i), hostname=f"rtr-{offset + i}")
        for i in range(n)
    ]
    streams.publish(r, keys.events, [{FIELD: encode(e)} for e in events])


def alert_ids(r: redis.Redis, keys: Keys) -> list[str]:
    return [
        str(orjson.loads(fields[FIELD])["data"]["alert_id"]) for _, fields in r.xrange(keys.alerts)
    ]


def metric(url: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples matching ``labels`` on a /metrics page."""
    text = requests.get(url + "/metrics", timeout=10).text
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_batched_relay_delivers_every_alert_once_with_few_requests(
    procs: Procs, r: redis.Redis, keys: Keys, demo_rules: None
) -> None:
    alert = procs.serve("alert")
    publish_link_downs(r, keys, 300)
    _, relay = procs.relay(f"alert={alert}/")
    assert wait_until(lambda: streams.drained(r, keys.events, "alert"))
    ids = alert_ids(r, keys)
    assert len(ids) == 300 and len(set(ids)) == 300
    assert r.xlen(keys.audit) == 300  # internal replies travel back and are settled too
    requests_made = metric(relay, "mutt_relay_requests_total", stage="alert", status="200")
    assert 300 / 25 <= requests_made < 300  # batches of up to 25, not one request per event
    assert r.xlen(keys.dlq("alert")) == 0
    page = requests.get(alert + "/metrics", timeout=10).text
    assert 'mutt_http_requests_in_flight{function="alert"}' in page


def test_an_unreachable_function_backs_off_and_loses_nothing(
    procs: Procs, r: redis.Redis, keys: Keys, demo_rules: None
) -> None:
    port = free_port()  # nothing listens there yet: a function scaled to zero, a rollout
    publish_link_downs(r, keys, 100)
    _, relay = procs.relay(f"alert=http://127.0.0.1:{port}/")
    assert wait_until(lambda: metric(relay, "mutt_relay_backoffs_total", stage="alert") >= 3)
    time.sleep(2)  # several retry rounds, far past the worker's delivery limit
    assert r.xlen(keys.dlq("alert")) == 0  # an outage is never the events' fault
    assert r.xlen(keys.alerts) == 0
    procs.serve("alert", port)
    assert wait_until(lambda: streams.drained(r, keys.events, "alert"))
    ids = alert_ids(r, keys)
    assert len(ids) == 100 and len(set(ids)) == 100
    assert r.xlen(keys.dlq("alert")) == 0


def test_a_relay_killed_mid_window_loses_and_doubles_nothing(
    procs: Procs, r: redis.Redis, keys: Keys, demo_rules: None
) -> None:
    alert = procs.serve("alert")
    publish_link_downs(r, keys, 2000)
    doomed, _ = procs.relay(f"alert={alert}/", window=6)
    assert wait_until(lambda: r.xlen(keys.alerts) >= 200)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(timeout=10)
    assert r.xlen(keys.alerts) < 2000  # it really died mid-stream
    procs.relay(f"alert={alert}/", window=6)  # claims the dead consumers' entries
    assert wait_until(lambda: streams.drained(r, keys.events, "alert"), timeout=180)
    ids = alert_ids(r, keys)
    assert len(set(ids)) == 2000  # none lost
    assert len(ids) == 2000  # none published twice
    assert r.xlen(keys.dlq("alert")) == 0


class Foreign:
    """A foreign HTTP target: records binary-mode CloudEvents; refuses ids with 'bad'."""

    def __init__(self) -> None:
        self.received: list[dict[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                outer.received.append(headers)
                status = 400 if "bad" in headers.get("ce-subject", "") else 202
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/"


def test_a_foreign_target_gets_single_binary_events_and_its_4xx_dead_letters(
    procs: Procs, r: redis.Redis, keys: Keys
) -> None:
    foreign = Foreign()
    events = [accepted_event(i, f"message {i}") for i in range(20)]
    bad = accepted_event(99, "refused")
    bad = type(bad)({**bad.get_attributes(), "subject": "bad one"}, bad.data)
    streams.publish(r, keys.events, [{FIELD: encode(e)} for e in [*events, bad]])
    health = free_port()
    procs.start(
        "relay",
        "--to",
        f"alert={foreign.url}",
        "--mode",
        "alert=single",
        MUTT_HEALTH_PORT=str(health),
    )
    assert wait_until(lambda: streams.drained(r, keys.events, "alert"))
    foreign.server.shutdown()
    assert len(foreign.received) == 21  # one POST per event
    assert all(h["ce-specversion"] == "1.0" for h in foreign.received)
    assert {h["ce-id"] for h in foreign.received} == {str(e["id"]) for e in [*events, bad]}
    ((_, dead),) = r.xrange(keys.dlq("alert"))
    assert b"answered 400" in dead[b"dlq_reason"]  # the target's verdict on that event


def round_robin_proxy(backends: list[int]) -> int:
    """A TCP proxy on a free port handing each connection to the next backend in turn:
    what Knative's activator does in front of a function's pods."""
    port = free_port()
    turn = itertools.cycle(backends)

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", next(turn))
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    ready = threading.Event()

    def serve() -> None:
        async def main() -> None:
            server = await asyncio.start_server(accept, "127.0.0.1", port)
            ready.set()
            async with server:
                await server.serve_forever()

        asyncio.run(main())

    threading.Thread(target=serve, daemon=True).start()
    ready.wait(10)
    return port


def test_two_instances_behind_one_url_both_get_work(
    procs: Procs, r: redis.Redis, keys: Keys, demo_rules: None
) -> None:
    one, two = procs.serve("alert"), procs.serve("alert")
    ports = [int(re.sub(r".*:", "", url)) for url in (one, two)]
    proxy = round_robin_proxy(ports)
    publish_link_downs(r, keys, 400)
    procs.relay(f"alert=http://127.0.0.1:{proxy}/", window=4)
    assert wait_until(lambda: streams.drained(r, keys.events, "alert"))
    assert len(set(alert_ids(r, keys))) == 400
    for url in (one, two):  # each instance decided some of the events
        assert metric(url, "mutt_decisions_total") > 0, url
