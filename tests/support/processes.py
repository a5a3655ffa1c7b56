"""Helpers for tests that drive MUTT as a user would: processes, HTTP, environment."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import requests

from shared.config import Settings


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment a child process needs to see exactly these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUTT_")}
    for name, value in settings.model_dump(exclude_none=True).items():
        env[f"MUTT_{name.upper()}"] = str(value)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mutt(*args: str) -> list[str]:
    """argv for the ``mutt`` command of this checkout."""
    return [sys.executable, "-m", "mutt", *args]


def wait_http(url: str, proc: subprocess.Popen[bytes] | None = None, timeout: float = 30.0) -> None:
    """Wait until ``url`` answers 200 (fail early if ``proc`` died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode} before {url} was ready")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{url} not ready within {timeout}s")


def stop(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> int:
    """SIGTERM and wait; kill if it hangs (and fail the caller's expectations)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode
