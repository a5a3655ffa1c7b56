"""What the benchmarks share: servers, private namespaces, child processes, wrk, tables.

Every benchmark works in its own Redis namespace (``MUTT_NAMESPACE``) and,
when it needs PostgreSQL, its own schema (``MUTT_DATABASE_SCHEMA``); both
are removed when it ends, however it ends. Progress goes to stderr, the
result table to stdout. Nothing here asserts a timing: a benchmark prints
its numbers next to a baseline measured in the same run.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
import requests

from mutt.db.migrate import migrate
from shared.db.connection import connect_pg

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
_STARTED = time.monotonic()


def log(text: str) -> None:
    """Progress on stderr, with the seconds since the benchmark started."""
    print(f"[{time.monotonic() - _STARTED:6.1f}s] {text}", file=sys.stderr, flush=True)


def server_urls() -> tuple[str, str]:
    """The Redis and PostgreSQL the benchmarks use (``MUTT_*_URL``, else the local ones)."""
    return (
        os.environ.get("MUTT_REDIS_URL") or DEFAULT_REDIS_URL,
        os.environ.get("MUTT_DATABASE_URL") or DEFAULT_DATABASE_URL,
    )


def unique(label: str) -> str:
    return f"{label}{uuid.uuid4().hex[:8]}"


def clear_namespace(r: redis.Redis, namespace: str, keep: Sequence[str] = ()) -> int:
    """Delete every key under ``namespace:`` except ``keep``; return how many went."""
    kept = {k.encode() for k in keep}
    deleted = 0
    batch: list[bytes] = []
    for key in r.scan_iter(match=f"{namespace}:*", count=5000):
        if key in kept:
            continue
        batch.append(key)
        if len(batch) >= 5000:
            deleted += int(r.unlink(*batch))
            batch = []
    if batch:
        deleted += int(r.unlink(*batch))
    return deleted


@contextlib.contextmanager
def redis_namespace(redis_url: str, label: str) -> Iterator[str]:
    """A fresh key namespace, deleted on exit."""
    namespace = unique(f"bench-{label}-")
    try:
        yield namespace
    finally:
        client = redis.Redis.from_url(redis_url)
        try:
            gone = clear_namespace(client, namespace)
            log(f"cleanup: deleted {gone:,} Redis keys of namespace {namespace}")
        finally:
            client.close()


@contextlib.contextmanager
def pg_schema(database_url: str, label: str) -> Iterator[str]:
    """A fresh, migrated schema, dropped on exit."""
    schema = unique(f"bench_{label}_")
    conn = connect_pg(database_url, schema)
    try:
        migrate(conn)
    finally:
        conn.close()
    try:
        yield schema
    finally:
        conn = connect_pg(database_url)
        try:
            conn.run(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            log(f"cleanup: dropped PostgreSQL schema {schema}")
        finally:
            conn.close()


@contextlib.contextmanager
def scratch_dir(label: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=f"mutt-bench-{label}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def child_env(**mutt: str) -> dict[str, str]:
    """This environment without any ``MUTT_*`` variable, plus the given settings.

    Keys are settings field names (``namespace``, ``redis_url``...); other
    upper-case keys (``WORKERS``, ``THREADS``) are passed unchanged.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUTT_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("MUTT_LOG_LEVEL", "WARNING")
    for name, value in mutt.items():
        env[name if name.isupper() else f"MUTT_{name.upper()}"] = value
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Child:
    """A process this benchmark started, in its own session, logging to a file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        log_dir: Path,
        cpus: str | None = None,
    ) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        command = list(argv)
        if cpus is not None:
            command = ["taskset", "-c", cpus, *command]
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                command,
                env=dict(env),
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def check(self) -> None:
        if not self.alive():
            raise RuntimeError(
                f"{self.name} exited with code {self.proc.returncode}:\n{self.tail()}"
            )

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM (graceful: workers finish their batch), then SIGKILL of its group."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log(f"{self.name} did not stop within {timeout:.0f}s; killing it")
        # gunicorn workers live in the child's session: make sure none is left
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        return int(self.proc.returncode)


@contextlib.contextmanager
def children() -> Iterator[list[Child]]:
    """A list to put started children in; all are stopped on exit, last first."""
    started: list[Child] = []
    try:
        yield started
    finally:
        for child in reversed(started):
            child.stop()


def wait_http(url: str, child: Child, timeout: float = 30.0) -> float:
    """Wait until ``url`` answers anything below 500; return the seconds it took."""
    begun = time.monotonic()
    deadline = begun + timeout
    while time.monotonic() < deadline:
        child.check()
        try:
            if requests.get(url, timeout=1).status_code < 500:
                return time.monotonic() - begun
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{child.name}: {url} did not answer within {timeout:.0f}s\n{child.tail()}")


def mutt_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "mutt", *args]


def noop_argv(port: int) -> list[str]:
    """The same gunicorn, through functions-framework, serving ``bench/noop_function.py``."""
    return [
        sys.executable,
        "-m",
        "functions_framework",
        "--target",
        "noop",
        "--source",
        str(BENCH_DIR / "noop_function.py"),
        "--signature-type",
        "http",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]


# ------------------------------------------------------------------- wrk

WRK_LUA = BENCH_DIR / "wrk_ingest.lua"


@dataclass(frozen=True)
class WrkResult:
    """What one wrk run measured (latencies in ms)."""

    requests: int
    seconds: float
    errors: int
    bad_status: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def require_wrk() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("bench: wrk is not installed (Debian: apt-get install wrk)")
    return found


class Wrk:
    """``wrk -t1 -c<connections>`` with ``bench/wrk_ingest.lua``, running in its own process.

    ``script_args`` go to the script's ``init`` (see the script). A run with a
    request limit stops sending by itself but wrk still sleeps until its
    duration ends: ``interrupt`` (SIGINT) makes it print its summary at once.
    """

    def __init__(
        self,
        url: str,
        script_args: Sequence[str],
        *,
        seconds: float,
        connections: int = 16,
        cpus: str | None = None,
        timeout_s: int = 10,
    ) -> None:
        argv = [
            require_wrk(),
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            f"--timeout={timeout_s}s",
            "-s",
            str(WRK_LUA),
            url,
            "--",
            *script_args,
        ]
        if cpus is not None:
            argv = ["taskset", "-c", cpus, *argv]
        self.seconds = seconds
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
        )

    def interrupt(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)

    def result(self) -> WrkResult:
        try:
            out, err = self.proc.communicate(timeout=self.seconds + 60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        for line in out.splitlines():
            if line.startswith("BENCH_JSON "):
                doc = json.loads(line.removeprefix("BENCH_JSON "))
                errors = sum(int(doc[k]) for k in ("connect", "read", "write", "timeout"))
                return WrkResult(
                    requests=int(doc["requests"]),
                    seconds=int(doc["duration_us"]) / 1e6,
                    errors=errors,
                    bad_status=int(doc["status"]) + int(doc.get("non2xx", 0)),
                    p50_ms=int(doc["p50_us"]) / 1000,
                    p90_ms=int(doc["p90_us"]) / 1000,
                    p99_ms=int(doc["p99_us"]) / 1000,
                    max_ms=int(doc["max_us"]) / 1000,
                )
        raise RuntimeError(f"wrk gave no summary (exit {self.proc.returncode}):\n{err[-2000:]}")


def run_wrk(
    url: str,
    script_args: Sequence[str],
    *,
    seconds: float,
    connections: int = 16,
    cpus: str | None = None,
) -> WrkResult:
    """One timed wrk run (see ``Wrk``)."""
    return Wrk(url, script_args, seconds=seconds, connections=connections, cpus=cpus).result()


def wait_until(
    done: Callable[[], bool], timeout: float, interval: float = 0.02, what: str = "condition"
) -> float:
    """Poll ``done`` until true; return the seconds waited (RuntimeError after ``timeout``)."""
    begun = time.monotonic()
    while not done():
        if time.monotonic() - begun > timeout:
            raise RuntimeError(f"{what} not reached within {timeout:.0f}s")
        time.sleep(interval)
    return time.monotonic() - begun


# ----------------------------------------------------------------- output


def has_group(r: redis.Redis, stream: str, group: str) -> bool:
    """The consumer group exists on the stream (a worker or relay has started on it)."""
    try:
        groups: Any = r.xinfo_groups(stream)
    except redis.ResponseError:
        return False
    return any(g["name"] in (group, group.encode()) for g in groups)


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """An aligned text table on stdout: first column left, the others right."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        first = row[0].ljust(widths[0])
        rest = [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    print(f"\n## {title}\n")
    print(line(cells[0]))
    print(line(["-" * w for w in widths]))
    for row in cells[1:]:
        print(line(row))
    sys.stdout.flush()


def num(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def ratio(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return "n/a"
    return f"{value / base:.2f}x"


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile (``None`` for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def machine() -> str:
    """``nproc``, CPU model and memory, for the header of a result."""
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().splitlines()[0].split()[1])
        mem = f", {kb / 1024 / 1024:.1f} GiB RAM"
    return f"{os.cpu_count()} vCPU {model}{mem}, Python {sys.version.split()[0]}"


def cpu_idle(seconds: float = 0.5) -> float:
    """Share of CPU time idle over ``seconds`` (all CPUs, from /proc/stat)."""

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return 1.0
    return (idle1 - idle0) / max(1, total1 - total0)


def wait_idle(max_seconds: float, threshold: float = 0.9) -> float:
    """Wait (at most ``max_seconds``) until the CPUs are ``threshold`` idle; return the idle share.

    The building-block measurements did the same (docs/reference/building-blocks.md
    §0): on a shared machine, a run that starts while something else is busy
    measures the neighbour.
    """
    deadline = time.monotonic() + max_seconds
    idle = cpu_idle()
    while idle < threshold and time.monotonic() < deadline:
        idle = cpu_idle(1.0)
    return idle


def wait_stable(read: Callable[[], int], quiet: float = 0.3, timeout: float = 15.0) -> int:
    """Poll ``read`` until it has not changed for ``quiet`` seconds; return its value.

    After wrk stops, the requests it had in flight still land on the server:
    wait for them before counting or clearing.
    """
    deadline = time.monotonic() + timeout
    value = read()
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = read()
        if now == value:
            return now
        value = now
    return value


def _stat(pid: int | str) -> tuple[int, float] | None:
    """(parent pid, CPU seconds used: user + system) of one process; None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw.rsplit(")", 1)[1].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _proc_stats() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds used) for every process."""
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(entry)) is not None:
            stats[int(entry)] = stat
    return stats


def process_cpu_seconds(pid: int) -> float | None:
    """CPU seconds (user + system) one process has used; None if it is not on this machine."""
    stat = _stat(pid)
    return None if stat is None else stat[1]


def tree_cpu_seconds(pids: Mapping[str, int]) -> dict[str, float]:
    """CPU seconds used so far by each named process and its living descendants."""
    stats = _proc_stats()
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in stats.items():
        children.setdefault(parent, []).append(pid)
    out = {}
    for name, root in pids.items():
        total, todo = 0.0, [root]
        while todo:
            pid = todo.pop()
            total += stats.get(pid, (0, 0.0))[1]
            todo += children.get(pid, [])
        out[name] = total
    return out


def redis_cpu_seconds(r: redis.Redis) -> float:
    """CPU seconds the Redis server has used (``INFO cpu``), whoever it worked for."""
    info = r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
