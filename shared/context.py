"""Per-process resources of a function, built once on first use.

Knative scales functions from zero, so nothing heavy happens at import:
the first request (or the worker start) builds settings, the Redis client
and the database connections; later calls reuse them. pg8000 (with scramp
and asn1crypto, ~30 ms) is imported by the first ``pg()``: forward and
ingest never open a PostgreSQL connection and never pay for it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, TypeVar

import redis

from shared.broker.keys import Keys
from shared.config import Settings, load_settings
from shared.dynconfig import DynamicConfig
from shared.errors import ConfigError
from shared.redis_client import connect_redis
from shared.secrets import Secrets
from shared.tracing import configure_from_env

if TYPE_CHECKING:
    import pg8000.native

T = TypeVar("T")


class Context:
    """Settings plus lazily opened clients; PostgreSQL connections are per thread."""

    def __init__(self, settings: Settings) -> None:
        configure_from_env()
        self.settings = settings
        self.keys = Keys(settings.namespace, partitions=settings.partitions)
        self._local = threading.local()

    @cached_property
    def secrets(self) -> Secrets:
        s = self.settings
        vault = None
        if s.vault_addr:
            if not s.vault_role_id or not s.vault_secret_id_file:
                raise ConfigError(
                    "MUTT_VAULT_ADDR is set: MUTT_VAULT_ROLE_ID and MUTT_VAULT_SECRET_ID_FILE"
                    " are needed too"
                )
            from shared.vault import VaultSource  # hvac + requests: ~100 ms, only for Vault

            vault = VaultSource(
                s.vault_addr, s.vault_role_id, s.vault_secret_id_file, s.vault_mount, s.vault_path
            )
        return Secrets(s.secrets_dir, vault=vault)

    @cached_property
    def dynamic(self) -> DynamicConfig:
        return DynamicConfig(self.redis, self.keys.config)

    @cached_property
    def redis(self) -> redis.Redis:
        url, _ = self.settings.require_urls()
        return connect_redis(url, passwords=self._rotation("redis_password"))

    def _rotation(self, name: str) -> list[str]:
        """The CURRENT/NEXT pair of a rotated password, from the secret chain."""
        return [v for v in (self.secrets.get(name), self.secrets.get(f"{name}_next")) if v]

    def pg(self) -> pg8000.native.Connection:
        """This thread's connection (pg8000 connections are not thread-safe)."""
        conn: pg8000.native.Connection | None = getattr(self._local, "pg", None)
        if conn is None:
            from shared.db.connection import connect_pg

            _, url = self.settings.require_urls()
            conn = connect_pg(
                url, self.settings.database_schema, passwords=self._rotation("database_password")
            )
            self._local.pg = conn
        return conn

    def drop_pg(self) -> None:
        """Forget this thread's connection after an error; the next call reconnects."""
        conn = getattr(self._local, "pg", None)
        self._local.pg = None
        if conn is not None:
            with contextlib.suppress(Exception):  # already broken
                conn.close()


_lock = threading.Lock()
_context: Context | None = None


def get_context() -> Context:
    """The process-wide context, created from the environment on first call."""
    global _context
    if _context is None:
        with _lock:
            if _context is None:
                _context = Context(load_settings())
    return _context


def set_context(ctx: Context | None) -> None:
    """Replace the process context (tests, the worker CLI)."""
    global _context
    _context = ctx


def built_once(make: Callable[[Context], T]) -> Callable[[Context], T]:
    """``make``, called once per process however many threads ask at the same time.

    A function scaled from zero gets its first requests together (the relay
    keeps several in flight): without this, each request thread builds its
    own handler, 8 rule loads side by side on one GIL, and the first answer
    waits for all of them. The others wait for the one build; a build that
    fails is tried again by the next caller.
    """
    lock = threading.Lock()
    made: list[T] = []

    def get(ctx: Context) -> T:
        if not made:
            with lock:
                if not made:
                    made.append(make(ctx))
        return made[0]

    return get
