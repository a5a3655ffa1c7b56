"""The rule cache: compiled once, warmed before the first event, reloaded on change.

Writers (``mutt rules apply``, the API) bump ``<namespace>:rules:version``
in Redis; every instance checks that version at most every
``check_seconds`` (0.5 s) and reloads from PostgreSQL when it moved, so all
instances converge within a second. If PostgreSQL cannot be read, the last
good snapshot keeps serving and the failure is reported (``last_error``).

Every load asks PostgreSQL for the rules' digest; the compiled index of
exactly those rules comes from Redis when an instance built it before
(``index_cache.py``); otherwise the rules are read, built and stored.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pg8000.native
import redis

from functions.alert.catalog.tables import bump_version, version_key
from functions.alert.index_cache import IndexCache
from functions.alert.literal_cache import LiteralAnalyses
from functions.alert.rules import DevHosts, RuleSet
from functions.alert.rules.stored import Recorder
from functions.alert.store import (
    load_dev_hosts,
    load_rules_document,
    load_teams,
    parse_rules,
    rules_digest,
)
from shared.metrics import RULES_LOADED, RULES_RELOAD_FAILURES, RULES_RELOAD_SECONDS, RULES_VERSION

log = logging.getLogger(__name__)

__all__ = ["RuleCache", "Snapshot", "bump_version", "version_key"]


@dataclass(frozen=True)
class Snapshot:
    """Everything the decision needs, consistent with one version."""

    rules: RuleSet
    dev_hosts: DevHosts
    teams: dict[str, str]
    version: int
    loaded_at: float
    load_seconds: float


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside (the previous state is restored after).

    Building or restoring 10,000 rules allocates some 200,000 objects; the
    collections they trigger traverse every object of the process, a third
    of the CPU of a restore. Nothing built here forms a cycle, and the pause
    lasts a fraction of a second.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class RuleCache:
    """Holds the current snapshot; ``current()`` is cheap and thread-safe."""

    def __init__(
        self,
        connect: Callable[[], pg8000.native.Connection],
        r: redis.Redis,
        namespace: str,
        check_seconds: float = 0.5,
    ) -> None:
        self._connect = connect
        self._r = r
        self._key = version_key(namespace)
        self._analyses = LiteralAnalyses(r, namespace)
        self._index = IndexCache(r, namespace)
        self._check = check_seconds
        self._snapshot: Snapshot | None = None
        self._checked_at = 0.0
        self._lock = threading.Lock()
        self.last_error: str | None = None
        self.reloads = 0

    def warm(self) -> Snapshot:
        """Load now; raises if there is no snapshot at all to serve from."""
        with self._lock:
            return self._load(self._read_version())

    def current(self) -> Snapshot:
        snap = self._snapshot
        if snap is None:
            return self.warm()
        if time.monotonic() - self._checked_at >= self._check:
            self._maybe_reload(snap)
        return self._snapshot or snap

    def _maybe_reload(self, snap: Snapshot) -> None:
        with self._lock:
            self._checked_at = time.monotonic()
            try:
                version = self._read_version()
            except redis.RedisError as exc:
                self.last_error = f"cannot read rules version: {exc}"
                return
            if version == snap.version:
                return
            try:
                self._load(version)
            except Exception as exc:  # keep serving the last good rules
                RULES_RELOAD_FAILURES.inc()
                self.last_error = f"reload failed, serving version {snap.version}: {exc}"
                log.error("rule reload failed; still serving version %d: %s", snap.version, exc)

    def _read_version(self) -> int:
        raw = self._r.get(self._key)
        return int(raw) if raw else 0

    def _load(self, version: int) -> Snapshot:
        started = time.perf_counter()
        conn = self._connect()
        try:
            digest, hosts, teams = rules_digest(conn), load_dev_hosts(conn), load_teams(conn)
            with _gc_paused():
                rules = self._index.load(digest)
                built = rules is None
                if rules is None:
                    rules = self._build(conn)
        finally:
            conn.close()
        for err in rules.rejected:
            log.error("rule rejected at load: %s", err)
        snap = Snapshot(
            rules, DevHosts(hosts), teams, version, time.time(), time.perf_counter() - started
        )
        self._snapshot = snap
        self._checked_at = time.monotonic()
        self.last_error = None
        self.reloads += 1
        RULES_VERSION.set(version)
        RULES_LOADED.set(snap.rules.stats.active)
        RULES_RELOAD_SECONDS.observe(snap.load_seconds)
        log.info(
            "rules loaded: version %d, %d rules (%d active) in %.3fs (%s)",
            version,
            snap.rules.stats.rules,
            snap.rules.stats.active,
            snap.load_seconds,
            "built and stored" if built else "compiled index from Redis",
        )
        return snap

    def _build(self, conn: pg8000.native.Connection) -> RuleSet:
        """Validate, analyse and index the rules; store the result for the next start."""
        digest, document = load_rules_document(conn)  # the digest of exactly these rules
        rows = parse_rules(document)
        del document  # 2.4 MB at 10,000 rules: not held while building
        analyses = Recorder(self._analyses)
        rules = RuleSet.from_rows(rows, analyse=analyses)
        del rows
        self._index.store(digest, rules, analyses.answers)
        return rules
