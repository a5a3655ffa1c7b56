"""The Broker variant (knative/broker/) against a stand-in Broker that enforces Knative's rules.

The stand-in routes events by the Triggers the manifests render, POSTs each
as one binary-mode CloudEvent to the real `mutt serve` functions, and holds
them to the contract (knative/eventing#6797, the delivery spec):

- a reply is one CloudEvent or nothing (never a batch);
- 2xx means done; 429/5xx are retried after Retry-After (or a backoff);
  any other 4xx goes to the dead-letter sink;
- nothing a function keeps for later may wait for a stream worker: no stream
  worker reads the alerts stream here, so an entry parked there would be
  stranded.

The relay bridges the events stream into the stand-in's ingress exactly as
knative/broker/relay-to-broker.yaml runs it (single mode).
"""

from __future__ import annotations

import heapq
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson
import pytest
import redis
import requests
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent, from_http

from shared.broker import streams
from shared.broker.keys import Keys, schedule_keys
from shared.config import Settings
from shared.dynconfig import DynamicConfig
from shared.envelope import FIELD, encode
from shared.single_event import INNER, PACKED, pack
from tests.support import kube
from tests.support.factories import accepted_event
from tests.support.processes import free_port, mutt, settings_env, stop, wait_http
from tests.support.resilience import wait_until
from tests.support.vendor import VendorServer

pytestmark = pytest.mark.slow


class StandInBroker:
    """Knative Broker semantics, in process: ingress, Trigger filters, retries, dead letters."""

    def __init__(self, triggers: list[kube.Doc], subscribers: dict[str, str]) -> None:
        self.triggers = triggers
        self.subscribers = subscribers
        self.queue: list[tuple[float, int, CloudEvent, str | None, int]] = []
        self.seq = 0
        self.lock = threading.Condition()
        self.dead: list[tuple[CloudEvent, int, str]] = []
        self.violations: list[str] = []
        self.answers: dict[int, int] = {}
        self.in_flight = 0
        self.stopped = threading.Event()
        outer = self

        class Ingress(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                event = from_http(dict(self.headers.items()), body)
                outer.put(event, None, 0, 0.0)
                self.send_response(202)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return

        self.ingress = ThreadingHTTPServer(("127.0.0.1", 0), Ingress)
        self.url = f"http://127.0.0.1:{self.ingress.server_port}/"
        threading.Thread(target=self.ingress.serve_forever, daemon=True).start()
        threading.Thread(target=self._dispatch, daemon=True).start()

    def put(self, event: CloudEvent, subscriber: str | None, attempt: int, delay: float) -> None:
        with self.lock:
            self.seq += 1
            heapq.heappush(
                self.queue, (time.monotonic() + delay, self.seq, event, subscriber, attempt)
            )
            self.lock.notify()

    def idle(self) -> bool:
        with self.lock:
            return not self.queue and self.in_flight == 0

    def _matches(self, trigger: kube.Doc, event: CloudEvent) -> bool:
        wanted = trigger["spec"]["filter"]["attributes"]
        return all(event.get(k) == v for k, v in wanted.items())

    def _dispatch(self) -> None:
        while not self.stopped.is_set():
            with self.lock:
                while not self.queue or self.queue[0][0] > time.monotonic():
                    wait = self.queue[0][0] - time.monotonic() if self.queue else 0.2
                    self.lock.wait(max(0.01, min(wait, 0.2)))
                    if self.stopped.is_set():
                        return
                _, _, event, subscriber, attempt = heapq.heappop(self.queue)
                self.in_flight += 1
            try:
                if subscriber is None:  # fan out to every matching Trigger
                    for trigger in self.triggers:
                        if self._matches(trigger, event):
                            name = trigger["spec"]["subscriber"]["ref"]["name"]
                            self.put(event, name, 0, 0.0)
                else:
                    self._deliver(event, subscriber, attempt)
            finally:
                with self.lock:
                    self.in_flight -= 1

    def _deliver(self, event: CloudEvent, subscriber: str, attempt: int) -> None:
        headers, body = to_binary(event)
        resp = requests.post(self.subscribers[subscriber], data=body, headers=headers, timeout=30)
        status = resp.status_code
        self.answers[status] = self.answers.get(status, 0) + 1
        if 200 <= status < 300:
            if not resp.content:
                return
            ctype = resp.headers.get("content-type", "")
            if "cloudevents-batch" in ctype or "ce-id" not in resp.headers:
                self.violations.append(f"{subscriber} replied {ctype!r}: not one binary event")
                return
            self.put(from_http(dict(resp.headers), resp.content), None, 0, 0.0)
            return
        if status == 429 or status >= 500:
            retry_after = float(resp.headers.get("retry-after", "0") or 0)
            backoff = 0.05 * 2 ** min(attempt, 6)
            if attempt >= 50:
                self.dead.append((event, status, "retries exhausted"))
                return
            self.put(event, subscriber, attempt + 1, max(retry_after, backoff))
            return
        self.dead.append((event, status, resp.text[:200]))

    def close(self) -> None:
        self.stopped.set()
        self.ingress.shutdown()


@pytest.fixture
def broker_triggers() -> list[kube.Doc]:
    return kube.find(kube.render(kube.KUSTOMIZATIONS["broker"]), "Trigger")


@pytest.fixture
def procs(settings: Settings) -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in reversed(started):
        stop(proc)


def serve(started: list[subprocess.Popen[bytes]], env: dict[str, str], function: str) -> str:
    port = free_port()
    proc = subprocess.Popen(mutt("serve", function, "--port", str(port)), env=env)
    started.append(proc)
    url = f"http://127.0.0.1:{port}/"
    wait_http(url + "healthz", proc)
    return url


def test_the_broker_variant_follows_knatives_rules_and_strands_nothing(
    settings: Settings,
    r: redis.Redis,
    keys: Keys,
    demo_rules: None,
    procs: list[subprocess.Popen[bytes]],
    broker_triggers: list[kube.Doc],
    tmp_path: Path,
) -> None:
    vendor = VendorServer().start()
    for _ in range(6):  # the webhook is down at first: forward must make the Broker retry
        vendor.reply(503, b"down")
    config = tmp_path / "forward.yaml"
    config.write_text(
        "sinks:\n"
        f"  - {{name: archive, type: file, path: {settings.sink_path}}}\n"
        f"  - {{name: hook, type: webhook, url: '{vendor.url}/hook'}}\n"
        "default: [archive, hook]\n"
    )
    dyn = DynamicConfig(r, keys.config)
    dyn.set("forward_retry_base_ms", "100")
    dyn.set("forward_retry_max_ms", "200")
    dyn.set("breaker_threshold", "1000")
    dyn.set("forward_rate_limit", "20")  # per second: a batch of 60 must wait its turn
    dyn.set("forward_rate_window_ms", "1000")
    env = {**settings_env(settings), "MUTT_FORWARD_CONFIG": str(config)}
    subscribers = {"alert": serve(procs, env, "alert"), "forward": serve(procs, env, "forward")}
    procs.append(subprocess.Popen(mutt("worker", "audit"), env=env))
    broker = StandInBroker(broker_triggers, subscribers)
    try:
        events = [
            accepted_event(
                i, f"%LINK-3-UPDOWN: Interface Gi0/{i}, changed state to down", hostname=f"edge-{i}"
            )
            for i in range(60)
        ]
        streams.publish(r, keys.events, [{FIELD: encode(e)} for e in events])
        procs.append(
            subprocess.Popen(
                mutt("relay", "--to", f"alert={broker.url}", "--mode", "alert=single"), env=env
            )
        )

        def delivered() -> set[str]:
            if not settings.sink_path.exists():
                return set()
            lines = settings.sink_path.read_bytes().splitlines()
            return {str(orjson.loads(line)["alert_id"]) for line in lines}

        assert wait_until(lambda: len(delivered()) == 60 and broker.idle(), timeout=180)
        assert wait_until(lambda: streams.drained(r, keys.events, "alert"))
        time.sleep(1)
        lines = settings.sink_path.read_bytes().splitlines()
        assert len(lines) == 60  # each alert once at the file sink
        hooked = {str(req.json()["alert_id"]) for req in vendor.requests if req.status == 200}
        assert hooked == delivered()  # and at the webhook, after its outage
        assert broker.violations == []  # replies were single events or nothing
        assert broker.dead == []  # nothing was the events' fault
        assert broker.answers.get(429, 0) > 0  # waits went back to the Broker...
        zset, _ = schedule_keys(keys.alerts)
        assert not r.exists(zset)  # ...instead of being parked where nothing reads
        assert not r.exists(keys.alerts) or r.xlen(keys.alerts) == 0
    finally:
        broker.close()
        vendor.stop()


def test_several_replies_are_packed_into_one_event_and_unpacked_by_forward(
    settings: Settings, r: redis.Redis, keys: Keys, procs: list[subprocess.Popen[bytes]]
) -> None:
    from tests.support.factories import alert_event

    env = settings_env(settings)
    forward = serve(procs, env, "forward")
    alerts = [alert_event(i) for i in range(3)]
    packed = pack(alerts)
    assert packed["type"] == PACKED and packed[INNER] == "io.mutt.alert.raised.v1"
    headers, body = to_binary(packed)
    resp = requests.post(forward, data=body, headers=headers, timeout=30)
    assert resp.status_code == 202, resp.text  # done, and nothing to reply with
    lines = [orjson.loads(x) for x in settings.sink_path.read_bytes().splitlines()]
    assert sorted(x["alert_id"] for x in lines) == sorted(a.data["alert_id"] for a in alerts)
    again = requests.post(forward, data=body, headers=headers, timeout=30)
    assert again.status_code == 202  # a redelivery finds them delivered
    assert len(settings.sink_path.read_bytes().splitlines()) == 3
