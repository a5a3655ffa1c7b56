"""``mutt run``: the whole pipeline on one machine, in one command.

The parent process owns the embedded servers (when no URLs are given),
migrates the database, then supervises one child per stage: ingest over HTTP
(functions-framework + gunicorn), the alert and forward stream workers; the
janitor runs on a timer in the parent. Ctrl-C / SIGTERM stops the children
gracefully (each finishes its batch), then the embedded servers.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import requests

from mutt import runfile, sample_rules
from mutt.children import die_with_parent
from mutt.db.migrate import migrate
from mutt.embedded import DataDirLock, EmbeddedPostgres, EmbeddedRedis
from mutt.ports import check_port_free
from shared.config import Settings, env_name
from shared.db.connection import connect_pg
from shared.errors import MuttError, PortInUseError
from shared.redis_client import connect_redis

log = logging.getLogger("mutt.run")
GRACE_SECONDS = 20.0


@dataclass
class Pipeline:
    """The running pieces, so ``stop`` can undo ``start`` in reverse."""

    settings: Settings
    host: str
    port: int
    admin_port: int | None = None  # None: the default 8090 if free; 0: no admin console
    children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    redis_server: EmbeddedRedis | None = None
    pg_server: EmbeddedPostgres | None = None
    lock: DataDirLock | None = None
    redis_url: str = ""
    database_url: str = ""
    _stop: threading.Event = field(default_factory=threading.Event)
    _janitor: threading.Thread | None = None

    @property
    def ingest_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def admin_url(self) -> str | None:
        return f"http://{self.host}:{self.admin_port}" if self.admin_port else None

    def start(self, say: Callable[[str], None]) -> None:
        check_port_free(self.host, self.port)
        self._admin_port_free(say)
        s = self.settings
        from functions.ingest.exposure import check_start  # before any server: fail fast
        from shared.context import Context

        check_start(s, Context(s).secrets, self.host)
        if not s.redis_url or not s.database_url:
            self.lock = DataDirLock(s.data_dir)
            self.lock.acquire()
        if s.redis_url:
            self.redis_url = s.redis_url
        else:
            say(f"starting embedded Redis in {s.data_dir / 'redis'}")
            self.redis_server = EmbeddedRedis(s.data_dir)
            self.redis_url = self.redis_server.start()
        connect_redis(self.redis_url).close()
        if s.database_url:
            self.database_url = s.database_url
        else:
            say(f"starting embedded PostgreSQL in {s.data_dir / 'pg'}")
            self.pg_server = EmbeddedPostgres(s.data_dir)
            self.database_url = self.pg_server.start()
        conn = connect_pg(self.database_url, s.database_schema)
        applied = migrate(conn)
        conn.close()
        if applied:
            say("database migrated: " + ", ".join(f"{m.version:04d}_{m.name}" for m in applied))
        if self.pg_server is not None:
            sample_rules.seed(
                self.redis_url,
                self.database_url,
                s.database_schema,
                s.namespace,
                say,
                once_in=s.data_dir,
            )
        env = self._child_env()
        py = sys.executable
        self._spawn(
            "ingest",
            [py, "-m", "mutt", "serve", "ingest", "--host", self.host, "--port", str(self.port)],
            env,
        )
        self._spawn("alert", [py, "-m", "mutt", "worker", "alert"], env)
        self._spawn("forward", [py, "-m", "mutt", "worker", "forward"], env)
        self._spawn("audit", [py, "-m", "mutt", "worker", "audit"], env)
        key_file = self._spawn_admin(env, py)
        self._wait_ready()
        self._janitor = threading.Thread(target=self._janitor_loop, name="janitor", daemon=True)
        self._janitor.start()
        say(f"ingest listening on {self.ingest_url} (POST / CloudEvents, GET /healthz)")
        if self.admin_url:
            where = f"; key in {key_file}" if key_file else ""
            say(f"admin console and API on {self.admin_url}/ (log in with an admin key{where})")
        self._announce(say)

    @property
    def embedded(self) -> bool:
        return self.redis_server is not None and self.pg_server is not None

    def _announce(self, say: Callable[[str], None]) -> None:
        """Record and print how operator commands reach this run."""
        data_dir = self.settings.data_dir
        runfile.write(
            data_dir,
            runfile.RunInfo(
                pid=os.getpid(),
                ingest_url=self.ingest_url,
                redis_url=self.redis_url if self.redis_server else None,
                database_url=self.database_url if self.pg_server else None,
                admin_url=self.admin_url,
            ),
        )
        if self.embedded:
            here = data_dir.resolve() == Path(".mutt").resolve()
            where = "from this directory" if here else f"with --data-dir {data_dir}"
            say(f"Redis {self.redis_url}, PostgreSQL {self.database_url}")
            say(f"operator commands find this run {where}: mutt status, mutt rules list, ...")
        else:
            say("operator commands need the same MUTT_REDIS_URL and MUTT_DATABASE_URL")

    def _child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env[env_name("redis_url")] = self.redis_url
        env[env_name("database_url")] = self.database_url
        env[env_name("data_dir")] = str(self.settings.data_dir.resolve())
        env[env_name("sink_file")] = str(self.settings.sink_path.resolve())
        env.setdefault("WORKERS", "1")
        env.setdefault("THREADS", "4")
        return env

    def _admin_port_free(self, say: Callable[[str], None]) -> None:
        """An explicit --admin-port must be free; the default 8090 is skipped when taken."""
        if self.admin_port == 0:
            self.admin_port = None
            return
        explicit = self.admin_port is not None
        self.admin_port = self.admin_port or 8090
        try:
            check_port_free(self.host, self.admin_port)
        except PortInUseError:
            if explicit:
                raise
            say("admin console not started: port 8090 is in use (choose one with --admin-port)")
            self.admin_port = None

    def _spawn_admin(self, env: dict[str, str], py: str) -> Path | None:
        """The admin function; on the embedded default with a generated key. Returns its file."""
        if self.admin_port is None:
            return None
        from mutt import admin_key

        key_file = None
        admin_env = dict(env)
        if self.embedded and not admin_key.configured(env):
            key_file, key = admin_key.ensure(self.settings.data_dir)
            admin_env[admin_key.ENV] = f"admin:{key}"
        argv = ["serve", "admin", "--host", self.host, "--port", str(self.admin_port)]
        self._spawn("admin", [py, "-m", "mutt", *argv], admin_env)
        return key_file.resolve() if key_file else None

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        # Children get their own session: a Ctrl-C reaches the terminal's
        # foreground group, and only the parent must react, stopping them in order.
        # If the parent is killed, the kernel sends each child SIGTERM: it
        # finishes its batch and exits instead of holding the port as an orphan.
        self.children[name] = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent(signal.SIGTERM),  # noqa: PLW1509 - see mutt/children.py
        )

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_children()
            urls = [self.ingest_url] + ([self.admin_url] if self.admin_url else [])
            try:
                if all(requests.get(f"{u}/healthz", timeout=1).status_code == 200 for u in urls):
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise MuttError(f"ingest did not become ready on {self.ingest_url} within {timeout:.0f}s")

    def check_children(self) -> None:
        """Raise if a child died: a pipeline missing a stage must not pretend to run."""
        for name, proc in self.children.items():
            code = proc.poll()
            if code is not None:
                raise MuttError(
                    f"the {name} process exited unexpectedly (code {code}); see its log above"
                )

    def _janitor_loop(self) -> None:
        from functions.janitor.handler import JanitorHandler
        from shared.context import Context

        settings = self.settings.model_copy(
            update={"redis_url": self.redis_url, "database_url": self.database_url}
        )
        janitor = JanitorHandler(Context(settings))
        while not self._stop.is_set():
            try:
                janitor.run("all")
            except Exception as exc:  # the timer must survive a failed run
                log.warning("janitor run failed: %s", exc)
            self._stop.wait(self.settings.janitor_interval_seconds)

    def wait(self) -> None:
        """Block until a signal arrives or a child dies."""
        while not self._stop.is_set():
            self.check_children()
            self._stop.wait(0.5)

    def request_stop(self, *_: object) -> None:
        self._stop.set()

    def stop(self, say: Callable[[str], None]) -> None:
        """Stop children gracefully (ingest first, so nothing new arrives), then servers."""
        self._stop.set()
        for name in ("admin", "ingest", "alert", "audit", "forward"):
            proc = self.children.get(name)
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=GRACE_SECONDS)
                except subprocess.TimeoutExpired:
                    say(f"{name} did not stop within {GRACE_SECONDS:.0f}s; killing it")
                    proc.kill()
                    proc.wait()
        if self.children or self.lock is not None:
            runfile.remove(self.settings.data_dir, os.getpid())
        if self.pg_server is not None:
            self.pg_server.stop()
        if self.redis_server is not None:
            self.redis_server.stop()
        if self.lock is not None:
            self.lock.release()


def install_signal_handlers(pipeline: Pipeline) -> None:
    def _handler(signum: int, frame: FrameType | None) -> None:
        pipeline.request_stop()

    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)


def run(
    settings: Settings,
    host: str,
    port: int,
    demo: bool,
    data_file: Path | None,
    admin_port: int | None = None,
) -> int:
    """The body of ``mutt run``; returns the exit code."""

    def say(text: str) -> None:
        print(f"mutt: {text}", file=sys.stderr, flush=True)

    pipeline = Pipeline(settings, host, port, admin_port)
    install_signal_handlers(pipeline)
    try:
        pipeline.start(say)
        if demo:
            from mutt.demo import run_demo

            return run_demo(pipeline, say, data_file)
        say("running; press Ctrl-C to stop")
        pipeline.wait()
        return 0
    finally:
        if pipeline.children:
            say("stopping")
        pipeline.stop(say)
