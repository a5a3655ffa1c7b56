"""Operator mistakes end with one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import socket
import subprocess

import pytest

from tests.support.processes import free_port, mutt

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"
UNREACHABLE_PG = "postgresql://postgres@127.0.0.1:1/test"


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        mutt(*args),
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("mutt: ")
    return lines[0]


@pytest.mark.parametrize("args", [["worker", "alert"], ["worker", "forward"], ["run"]])
def test_unreachable_redis(args: list[str], servers: tuple[str, str]) -> None:
    proc = run_cli(
        args + (["--port", str(free_port())] if args == ["run"] else []),
        {"MUTT_REDIS_URL": UNREACHABLE_REDIS, "MUTT_DATABASE_URL": servers[1]},
    )
    line = one_error_line(proc)
    assert "cannot reach Redis at redis://127.0.0.1:1/0" in line
    assert proc.returncode == 3


@pytest.mark.parametrize("args", [["db", "migrate"], ["run"], ["janitor", "run"]])
def test_unreachable_postgres(args: list[str], servers: tuple[str, str]) -> None:
    proc = run_cli(
        args + (["--port", str(free_port())] if args == ["run"] else []),
        {"MUTT_REDIS_URL": servers[0], "MUTT_DATABASE_URL": UNREACHABLE_PG},
    )
    line = one_error_line(proc)
    assert "cannot reach PostgreSQL at postgresql://postgres@127.0.0.1:1/test" in line
    assert proc.returncode == 3


def test_password_is_not_shown(servers: tuple[str, str]) -> None:
    proc = run_cli(
        ["db", "migrate"],
        {"MUTT_REDIS_URL": servers[0], "MUTT_DATABASE_URL": "postgresql://u:s3cr3t@127.0.0.1:1/x"},
    )
    line = one_error_line(proc)
    assert "s3cr3t" not in line
    assert "u:***@" in line


@pytest.mark.parametrize("command", [["run"], ["serve", "ingest"]])
def test_port_in_use(command: list[str], servers: tuple[str, str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = run_cli(
            [*command, "--port", str(port)],
            {"MUTT_REDIS_URL": servers[0], "MUTT_DATABASE_URL": servers[1]},
        )
    line = one_error_line(proc)
    assert f"cannot listen on 127.0.0.1:{port}" in line
    assert proc.returncode == 4


def test_worker_without_redis_url_says_which_variable() -> None:
    line = one_error_line(run_cli(["worker", "alert"], {}))
    assert "MUTT_REDIS_URL is not set" in line
