"""A server restarts on its port at once: TIME_WAIT left by the process that died is no refusal.

A connection the server closed first leaves its port in TIME_WAIT for 60 s
on Linux. A bind without SO_REUSEADDR is refused then, which is how a
restart loop (systemd Restart=always, a quadlet) used to spin for a minute;
only a port another process really listens on may be refused.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from tests.support.processes import free_port, wait_http


def time_wait_on(port: int) -> None:
    """Leave a TIME_WAIT connection on ``port`` (the server side closes first)."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(1)
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = listener.accept()
    accepted.close()  # the server's active close: its side goes to TIME_WAIT
    client.recv(1)
    client.close()
    listener.close()


def plain_bind_refused(port: int) -> bool:
    probe = socket.socket()
    try:
        probe.bind(("127.0.0.1", port))
    except OSError:
        return True
    finally:
        probe.close()
    return False


def serve(port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUTT_")}
    env["MUTT_REDIS_URL"] = "redis://127.0.0.1:1/0"  # never reached: only /healthz is asked
    env["MUTT_DATABASE_URL"] = "postgresql://u@127.0.0.1:1/db"
    return subprocess.Popen(
        [sys.executable, "-m", "mutt", "serve", "ingest", "--port", str(port)],
        env=env,
        stderr=subprocess.PIPE,
    )


def test_a_port_held_only_by_time_wait_is_served_at_once() -> None:
    port = free_port()
    time_wait_on(port)
    if not plain_bind_refused(port):
        pytest.skip("this kernel does not refuse a plain bind beside TIME_WAIT")
    proc = serve(port)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc)  # not "Address already in use"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_port_another_process_listens_on_is_refused_in_one_line() -> None:
    port = free_port()
    holder = socket.socket()
    holder.bind(("127.0.0.1", port))
    holder.listen(1)
    try:
        proc = serve(port)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 4  # port in use
        assert err.decode().strip().splitlines()[-1] == (
            f"mutt: cannot listen on 127.0.0.1:{port}: Address already in use;"
            " choose another --port"
        )
    finally:
        holder.close()
