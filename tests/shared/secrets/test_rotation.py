"""Redis password rotation (CURRENT/NEXT) without restart, against a private real Redis."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from mutt.embedded import _redis_binary
from shared.errors import UnreachableError
from shared.redis_client import connect_redis


@pytest.fixture
def locked_redis() -> Iterator[str]:
    """A redis-server (the embedded binary) on a Unix socket, password 'old'."""
    base = Path(tempfile.mkdtemp(prefix="mutt-rot-"))
    sock = base / "r.sock"
    proc = subprocess.Popen(
        [
            _redis_binary(),
            "--port",
            "0",
            "--unixsocket",
            str(sock),
            "--save",
            "",
            "--requirepass",
            "old",
            "--dir",
            str(base),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # The socket file appears before the server accepts on it: wait for an answer.
    probe = redis.Redis(unix_socket_path=str(sock), password="old")
    deadline = time.monotonic() + 10
    while True:
        try:
            probe.ping()
            break
        except (redis.ConnectionError, FileNotFoundError):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise
            time.sleep(0.02)
    probe.close()
    yield f"unix://{sock}"
    proc.terminate()
    proc.wait(timeout=10)
    shutil.rmtree(base, ignore_errors=True)


def test_rotation_swaps_to_next_and_back_without_restart(locked_redis: str) -> None:
    client = connect_redis(locked_redis, passwords=["old", "new"])
    client.set("k", "1")
    admin = redis.Redis(unix_socket_path=locked_redis.removeprefix("unix://"), password="old")
    admin.config_set("requirepass", "new")  # the operator rotates Redis
    client.connection_pool.disconnect()  # new connections from now on
    with pytest.raises(redis.AuthenticationError):
        client.get("k")
    from shared.redis_client import recover_auth

    assert recover_auth(client)  # what the worker loop does on an auth error
    assert client.get("k") == b"1"


def test_connect_tries_next_when_current_is_refused(locked_redis: str) -> None:
    client = connect_redis(locked_redis, passwords=["stale", "old"])
    assert client.ping()


def test_refused_credentials_are_one_clear_error(locked_redis: str) -> None:
    with pytest.raises(UnreachableError, match="refused the credentials"):
        connect_redis(locked_redis, passwords=["a", "b"])
