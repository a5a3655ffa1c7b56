"""``mutt run`` as a fresh user runs it: the README's commands, a SIGKILL, a restart.

No ``MUTT_*`` URL is set, so ``mutt run`` starts its embedded servers under
``./.mutt``; the operator commands beside it must find them with no
variables, and a ``kill -9`` must leave nothing behind that keeps the port,
the data directory or an event.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import psutil
import pytest
import requests

from tests.support.processes import free_port, mutt, wait_http

pytestmark = pytest.mark.slow

N = 200


def fresh_env() -> dict[str, str]:
    """A shell with no MUTT_* variable: the embedded default."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUTT_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    """An empty directory to run from (``./.mutt`` is created in it)."""
    yield tmp_path
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(tmp_path) in cmdline:  # whatever a failed test left
            proc.kill()


def start_run(workdir: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        mutt("run", "--port", str(port)),
        cwd=workdir,
        env=fresh_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    wait_http(f"http://127.0.0.1:{port}/healthz", proc, timeout=120)
    return proc


def operator(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        mutt(*args),
        cwd=workdir,
        env=fresh_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def send(url: str, run: str, n: int) -> int:
    """POST ``n`` link-down syslog events (each its own host); the number accepted."""
    accepted = 0
    with requests.Session() as http:
        for i in range(n):
            resp = http.post(
                url,
                headers={
                    "ce-specversion": "1.0",
                    "ce-id": f"{run}-{i}",
                    "ce-source": "/test/restart",
                    "ce-type": "io.mutt.syslog.v1",
                    "content-type": "application/json",
                },
                data=orjson.dumps(
                    {
                        "hostname": f"rtr-{run}-{i}",
                        "message": f"%LINK-3-UPDOWN: Interface Gi0/{i}, changed state to down",
                        "syslog_severity": "error",
                    }
                ),
                timeout=10,
            )
            accepted += resp.status_code in (200, 202)
    return accepted


def sink_ids(workdir: Path) -> list[str]:
    sink = workdir / ".mutt" / "alerts.jsonl"
    if not sink.exists():
        return []
    return [str(orjson.loads(line)["alert_id"]) for line in sink.read_bytes().splitlines()]


def wait_for_lines(workdir: Path, n: int, timeout: float = 120.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ids = sink_ids(workdir)
        if len(ids) >= n:
            time.sleep(2)  # anything delivered twice would arrive now
            return sink_ids(workdir)
        time.sleep(0.2)
    return sink_ids(workdir)


def test_readme_path_then_kill_9_then_restart_on_the_same_port(workdir: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    first = start_run(workdir, port)

    # The README's operator commands find the embedded servers with no variables.
    status = operator(workdir, "status")
    assert status.returncode in (0, 1), status.stderr
    assert "MUTT status" in status.stdout
    listed = operator(workdir, "rules", "list")
    assert listed.returncode == 0, listed.stderr
    assert "changed state to down" in listed.stdout  # the sample rules of a fresh run

    run = uuid.uuid4().hex[:8]
    accepted = send(url, run, N)
    assert accepted == N
    family = psutil.Process(first.pid).children(recursive=True)
    assert len(family) >= 5  # ingest, alert, forward, audit, Redis, PostgreSQL
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    _, alive = psutil.wait_procs(family, timeout=60)
    assert alive == [], [p.cmdline() for p in alive]  # no orphan keeps the port or the data

    started = time.monotonic()
    second = start_run(workdir, port)
    restarted_in = time.monotonic() - started
    try:
        ids = wait_for_lines(workdir, N)
        assert len(ids) == N, f"{len(ids)} alerts at the sink for {N} accepted events"
        assert len(set(ids)) == N  # none twice
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=60) == 0
    # Stopped cleanly: the operator commands say so instead of trying its sockets.
    gone = operator(workdir, "status")
    assert gone.returncode == 2
    assert "no `mutt run` found in" in gone.stderr
    print(f"restarted healthy in {restarted_in:.1f} s")  # reported, not asserted


def test_operator_commands_reach_a_run_given_its_data_dir(workdir: Path) -> None:
    port = free_port()
    data = workdir / "elsewhere"
    proc = subprocess.Popen(
        mutt("run", "--port", str(port), "--data-dir", str(data)),
        cwd=workdir,
        env=fresh_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc, timeout=120)
        ran = operator(workdir, "rules", "list", "--data-dir", str(data))
        assert ran.returncode == 0, ran.stderr
        ran = operator(workdir, "rules", "--data-dir", str(data), "list")
        assert ran.returncode == 0, ran.stderr
        missing = operator(workdir, "rules", "list")  # ./.mutt is not where it runs
        assert missing.returncode == 2
        assert "no `mutt run` found in" in missing.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    assert not (data / "run.json").exists()  # a clean stop leaves no stale record
