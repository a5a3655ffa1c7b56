"""The status document: is the pipeline keeping up, and does anything need a person?

The numbers an operator checks first: backlog per stream and consumer group
(pending, lag, age of the oldest pending entry), parked retries, dead
letters, circuit breakers, the rule set in force, the audit partitions and
the most frequent events no rule matched. Ages use the Redis server's
clock, so a skewed operator laptop does not distort them. One document for
``mutt status`` (which renders it) and the operator API and console.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import orjson
import pg8000.native
import redis

from functions.alert.catalog.tables import version_key
from functions.alert.unhandled import top_unhandled
from functions.janitor.partitions import health as partition_health
from shared.broker.dlq import stream_id_ms
from shared.broker.keys import Keys, schedule_keys
from shared.context import Context
from shared.dynconfig import DynamicConfig

DEFAULT_ROWS_CAP = 1_000_000


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _now_ms(r: redis.Redis) -> int:
    seconds, micros = r.time()
    return int(seconds) * 1000 + int(micros) // 1000


def stream_status(r: redis.Redis, keys: Keys, stream: str, now_ms: int) -> dict[str, Any]:
    """Length, parked entries and per-group backlog of one stream."""
    zset, _ = schedule_keys(stream)
    parked = int(r.zcard(zset))
    first: Any = r.zrange(zset, 0, 0, withscores=True)
    info: dict[str, Any] = {
        "name": keys.relative(stream),
        "partition": keys.index,
        "key": stream,
        "length": int(r.xlen(stream)),
        "parked": parked,
        "next_parked_due_seconds": (
            max(0.0, (float(first[0][1]) - now_ms) / 1000) if first else None
        ),
        "groups": [],
    }
    try:
        groups: Any = r.xinfo_groups(stream)
    except redis.ResponseError:  # no such stream yet
        groups = []
    for g in groups:
        name = _text(g["name"])
        summary: Any = r.xpending(stream, name)
        oldest = summary.get("min") if summary else None
        lag = g.get("lag")
        if lag is None:  # Redis before 7 (the embedded default) does not report it
            lag = _lag(r, stream, _text(g["last-delivered-id"]))
        info["groups"].append(
            {
                "name": name,
                "consumers": int(g["consumers"]),
                "pending": int(g["pending"]),
                "lag": int(lag) if lag is not None else None,
                "oldest_pending_age_seconds": (
                    max(0.0, (now_ms - stream_id_ms(_text(oldest))) / 1000) if oldest else None
                ),
                "last_delivered_id": _text(g["last-delivered-id"]),
            }
        )
    return info


LAG_COUNT_CAP = 100_000


def _lag(r: redis.Redis, stream: str, last_delivered: str) -> int | None:
    """Entries after the group's last delivered id, counted (up to a cap).

    Redis 7 reports this as ``lag``; Redis 6.2 does not. The count reads ids
    in pages of 1,000, so a long backlog costs the operator a moment, never the
    server much: beyond ``LAG_COUNT_CAP`` it says "unknown" rather than scan on.
    """
    start = f"({last_delivered}"
    total = 0
    while total < LAG_COUNT_CAP:
        page: Any = r.xrange(stream, min=start, max="+", count=1000)
        if not page:
            return total
        total += len(page)
        start = f"({_text(page[-1][0])}"
    return None


def breaker_status(r: redis.Redis, keys: Keys, now_ms: int) -> list[dict[str, Any]]:
    """Every sink's circuit breaker found under ``<base>:breaker:*``."""
    found = []
    for raw_key in r.scan_iter(match=keys.breaker_pattern(), count=1000):
        key = _text(raw_key)
        fields = {_text(k): _text(v) for k, v in r.hgetall(key).items()}
        opened = int(fields.get("opened_at", "0") or 0)
        state = fields.get("state", "closed")
        found.append(
            {
                "sink": keys.breaker_sink(key),
                "state": state,
                "failures": int(fields.get("failures", "0") or 0),
                "opened_seconds_ago": (
                    max(0.0, (now_ms - opened) / 1000) if opened and state != "closed" else None
                ),
            }
        )
    return sorted(found, key=lambda b: str(b["sink"]))


def audit_partitions(conn: pg8000.native.Connection) -> dict[str, Any]:
    """Monthly partitions present, how far ahead they reach, rows stuck in DEFAULT.

    The janitor's own reading (``functions.janitor.partitions.health``), read-only,
    with DEFAULT's rows counted up to ``DEFAULT_ROWS_CAP``.
    """
    found = partition_health(conn, default_rows_cap=DEFAULT_ROWS_CAP)
    return {
        "partitions": found.partitions,
        "newest": found.newest,
        "months_ahead": found.months_ahead,
        "default_rows": found.default_rows,
        "default_rows_capped": found.default_rows_capped,
    }


def collect(ctx: Context) -> dict[str, Any]:
    """The whole status as one JSON-able document."""
    r, keys = ctx.redis, ctx.keys
    now_ms = _now_ms(r)
    streams = [
        stream_status(r, part, s, now_ms) for part in keys.all_partitions() for s in part.streams()
    ]
    conn = ctx.pg()
    count, active = conn.run("SELECT count(*), count(*) FILTER (WHERE is_active) FROM alert_rules")[
        0
    ]
    raw_version = r.get(version_key(ctx.settings.namespace))
    doc: dict[str, Any] = {
        "namespace": ctx.settings.namespace,
        "schema": ctx.settings.database_schema,
        "partitions": keys.partitions,
        "streams": streams,
        "dlq": dlq_totals(streams),
        "breakers": breaker_status(r, keys, now_ms),
        "rules": {
            "version": int(_text(raw_version)) if raw_version else 0,
            "count": int(count),
            "active": int(active),
        },
        "audit": audit_partitions(conn),
        "unhandled": unhandled_status(ctx),
        "sources": read_sources(r, keys),
    }
    doc["attention"] = attention(doc)
    return doc


def dlq_totals(streams: list[dict[str, Any]]) -> dict[str, int]:
    """Dead letters per stage, all partitions together."""
    totals: dict[str, int] = {}
    for s in streams:
        if s["name"].startswith("dlq:"):
            stage = s["name"].removeprefix("dlq:")
            totals[stage] = totals.get(stage, 0) + s["length"]
    return totals


def unhandled_status(ctx: Context, limit: int = 10) -> dict[str, Any]:
    """The current window's most frequent events no rule matched."""
    window = DynamicConfig(ctx.redis, ctx.keys.config).get("unhandled_window_seconds")
    top = top_unhandled(ctx.redis, ctx.settings.namespace, window, limit)
    return {"window_seconds": window, "top": [asdict(t) for t in top]}


def attention(doc: dict[str, Any]) -> list[str]:
    """What an operator should look at, in words (empty when all is well)."""
    notes = [
        f"{n} dead letters in dlq:{stage} (mutt dlq list --stage {stage})"
        for stage, n in doc["dlq"].items()
        if n
    ]
    notes += [
        f"breaker of sink {b['sink']} is {b['state']}"
        for b in doc["breakers"]
        if b["state"] != "closed"
    ]
    audit = doc["audit"]
    if audit["months_ahead"] is None or audit["months_ahead"] < 1:
        notes.append("no audit partition for next month (mutt janitor run --task partitions)")
    if audit["default_rows"]:
        notes.append(
            f"{audit['default_rows']} rows in the DEFAULT audit partition"
            " (mutt janitor run --task partitions)"
        )
    if doc["rules"]["active"] == 0:
        notes.append("no active rules: every event is unhandled (mutt rules apply)")
    for src in doc["sources"]:
        name = f"{src.get('kind')} {src.get('instance')}"
        recent = int(src.get("dropped_recently", 0))
        if recent:
            notes.append(
                f"{name} dropped {recent} messages in the last"
                f" {int(float(src.get('recent_seconds', 60)))}s"
                " (kernel buffer or intake queue full: docs/sources.md, sizing)"
            )
        if src.get("ingest", "ok") != "ok":
            notes.append(f"{name} cannot deliver to ingest: {src['ingest']}")
    return notes


def read_sources(r: redis.Redis, keys: Keys) -> list[dict[str, Any]]:
    """Every source instance's last published counters, by kind then instance."""
    found = []
    for key in r.scan_iter(match=keys.source_pattern(), count=1000):
        raw = r.get(key)
        if raw is None:
            continue  # expired between SCAN and GET
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if isinstance(doc, dict):
            found.append(doc)
    return sorted(found, key=lambda d: (str(d.get("kind")), str(d.get("instance"))))
