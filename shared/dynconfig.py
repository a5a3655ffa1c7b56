"""Dynamic settings: live-tunable values in Redis, validated on write.

Values live in one Redis hash (``<namespace>:config``). Readers keep a
snapshot and re-read the hash at most once per ``refresh_seconds`` (default
1 s), so every instance converges within a second of a change with no
subscription to lose (the original's pub/sub watcher never reconnected).
Writers validate against ``KNOBS`` and record who changed what in
``config_audit_log`` (``set_audited``: ``mutt config set`` and the admin API).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis

if TYPE_CHECKING:  # only writers touch PostgreSQL: readers (every function) must not load it
    import pg8000.native


def _int_range(lo: int, hi: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"{raw!r} is not an integer") from None
        if not lo <= value <= hi:
            raise ValueError(f"{value} is outside {lo}..{hi}")
        return value

    return parse


@dataclass(frozen=True)
class Knob:
    """One dynamic setting: its default, its parser (raises ValueError), its meaning."""

    default: int
    parse: Callable[[str], int]
    help: str


KNOBS: dict[str, Knob] = {
    "ingest_rate_limit": Knob(
        600_000, _int_range(0, 100_000_000), "events admitted per window, all instances (0 = off)"
    ),
    "ingest_rate_window_ms": Knob(60_000, _int_range(100, 3_600_000), "ingest rate window, ms"),
    "ingest_max_pending": Knob(
        1_000_000,
        _int_range(1_000, 1_000_000_000),
        "event-stream backlog above which ingest answers 503",
    ),
    "forward_rate_limit": Knob(
        100, _int_range(0, 1_000_000), "deliveries per window per sink without its own limit"
    ),
    "forward_rate_window_ms": Knob(1_000, _int_range(100, 3_600_000), "forward rate window, ms"),
    "forward_max_attempts": Knob(
        10,
        _int_range(1, 1000),
        "failed attempts after which a delivery is reported stuck (still retried, never DLQ'd)",
    ),
    "forward_retry_base_ms": Knob(1_000, _int_range(10, 3_600_000), "first retry delay, ms"),
    "forward_retry_max_ms": Knob(300_000, _int_range(10, 86_400_000), "longest retry delay, ms"),
    "breaker_threshold": Knob(5, _int_range(1, 10_000), "consecutive failures that open a breaker"),
    "breaker_cooldown_ms": Knob(30_000, _int_range(100, 3_600_000), "open time before a probe"),
    "unhandled_threshold": Knob(
        100,
        _int_range(1, 10_000_000),
        "unhandled events per host+fingerprint that raise a meta-alert",
    ),
    "unhandled_window_seconds": Knob(
        86_400, _int_range(10, 30 * 86_400), "unhandled counting window"
    ),
    "unhandled_max_fingerprints": Knob(
        1_000, _int_range(10, 1_000_000), "distinct fingerprints counted per host and window"
    ),
    "ingest_wait_replicas": Knob(
        0,
        _int_range(0, 5),
        "replicas that must confirm an event's write before ingest acknowledges it"
        " (WAIT; 0 = asynchronous replication, the Redis default; docs/reliability.md)",
    ),
    "ingest_wait_timeout_ms": Knob(
        1_000,
        _int_range(10, 60_000),
        "how long ingest waits for those replicas before answering 503",
    ),
    "dedup_window_seconds": Knob(
        3_600, _int_range(0, 7 * 86_400), "how long an event's source+id is remembered (0 = off)"
    ),
    # Correlation in the alert stage (docs/correlation.md). Off by default where
    # turning it on changes what gets delivered; flapping only concerns paired rules.
    "alert_dedup_seconds": Knob(
        0,
        _int_range(0, 7 * 86_400),
        "repeats of an alert's dedup_key within this window are counted, not delivered (0 = off)",
    ),
    "flap_threshold": Knob(
        5,
        _int_range(0, 10_000),
        "state changes of a paired alert within flap_window_seconds above which it flaps (0 = off)",
    ),
    "flap_window_seconds": Knob(600, _int_range(10, 86_400), "flapping detection window"),
    "flap_settle_seconds": Knob(
        300, _int_range(10, 86_400), "quiet time after which a flapping alert has settled"
    ),
    "storm_host_per_minute": Knob(
        0, _int_range(0, 1_000_000), "alerts per host and minute before a storm summary (0 = off)"
    ),
    "storm_global_per_minute": Knob(
        0, _int_range(0, 100_000_000), "alerts per minute in all before a storm summary (0 = off)"
    ),
    "pair_open_days": Knob(
        7, _int_range(1, 90), "how long an open paired alert is remembered waiting for its clear"
    ),
    "admin_auth_failures_per_minute": Knob(
        20,
        _int_range(0, 1_000_000),
        "failed admin API logins per client and minute before 429 (0 = off)",
    ),
    "audit_unhandled": Knob(
        0, _int_range(0, 1), "1 = audit unmatched events too, so rule backtests can see them"
    ),
}


class DynamicConfig:
    """Read (cached) and write dynamic settings."""

    def __init__(self, r: redis.Redis, key: str, refresh_seconds: float = 1.0) -> None:
        self._r = r
        self.key = key
        self._refresh = refresh_seconds
        self._values: dict[str, int] = {}
        self._loaded_at = -1e9
        self._lock = threading.Lock()

    def get(self, name: str) -> int:
        """The current value (default when unset or unreadable)."""
        knob = KNOBS[name]
        if time.monotonic() - self._loaded_at > self._refresh:
            self._reload()
        return self._values.get(name, knob.default)

    def _reload(self) -> None:
        with self._lock:
            if time.monotonic() - self._loaded_at <= self._refresh:
                return
            try:
                raw: Any = self._r.hgetall(self.key)
            except redis.RedisError:
                self._loaded_at = time.monotonic()  # keep the last good values
                return
            values: dict[str, int] = {}
            for k, v in raw.items():
                name = k.decode()
                if name in KNOBS:
                    try:
                        values[name] = KNOBS[name].parse(v.decode())
                    except ValueError:
                        continue  # a bad stored value never takes effect
            self._values = values
            self._loaded_at = time.monotonic()

    def set(self, name: str, raw: str) -> tuple[int, int]:
        """Validate and store; return (old, new). ``KeyError``/``ValueError`` explain refusals."""
        if name not in KNOBS:
            raise KeyError(f"unknown setting {name!r}; known: {', '.join(sorted(KNOBS))}")
        value = KNOBS[name].parse(raw.strip())
        old = self.get(name)
        self._r.hset(self.key, name, str(value))
        self._loaded_at = -1e9
        return old, value

    def snapshot(self) -> dict[str, int]:
        """Every knob's effective value."""
        self._loaded_at = -1e9
        return {name: self.get(name) for name in KNOBS}


CONFIG_TABLE = "dynamic_config"  # config_audit_log.table_name of setting changes


def set_audited(
    r: redis.Redis,
    key: str,
    conn: pg8000.native.Connection,
    name: str,
    raw: str,
    *,
    changed_by: str,
    reason: str,
) -> tuple[int, int]:
    """Validate, store and audit one change; return (old, new). ``mutt config set`` and the API.

    The audit row is written in the PostgreSQL transaction that brackets the
    Redis write, so a change the audit could not record is not made.
    ``KeyError``/``ValueError`` refuse an unknown name or a bad value before
    anything is written.
    """
    from shared.config_audit import ConfigChange, write_config_audit

    if name not in KNOBS:
        raise KeyError(f"unknown setting {name!r}; known: {', '.join(sorted(KNOBS))}")
    KNOBS[name].parse(raw.strip())
    dyn = DynamicConfig(r, key)
    existed = bool(r.hexists(key, name))
    conn.run("BEGIN")
    try:
        old, new = dyn.set(name, raw)
        change = ConfigChange(
            "UPDATE" if existed else "CREATE",
            CONFIG_TABLE,
            name,
            {"value": old, "source": "set" if existed else "default"},
            {"value": new},
        )
        write_config_audit(
            conn, [change], changed_by=changed_by, reason=reason, correlation_id=str(uuid.uuid4())
        )
        conn.run("COMMIT")
    except BaseException:
        conn.run("ROLLBACK")
        raise
    return old, new
