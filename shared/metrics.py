"""Prometheus metrics: every metric MUTT exposes, defined once, named by convention.

``mutt_`` prefix, ``_total`` counters, ``_seconds`` histograms. Stream and
DLQ depths are not counted by hand: ``StreamCollector`` asks Redis when
Prometheus scrapes, so the numbers are true whoever changed the streams.
Under gunicorn with several workers set ``PROMETHEUS_MULTIPROC_DIR``
(``mutt serve`` does it when ``WORKERS`` > 1) and ``render()`` aggregates.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from typing import Any

import redis
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from shared.broker.keys import Keys, schedule_keys
from shared.broker.stages import CONSUMING_STAGES, consumed

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

# ingest
INGEST_REQUESTS = Counter(
    "mutt_ingest_requests_total", "HTTP requests to ingest", ["route", "code"]
)
INGEST_SECONDS = Histogram(
    "mutt_ingest_request_seconds", "ingest request latency", ["route"], buckets=LATENCY_BUCKETS
)
EVENTS_RECEIVED = Counter("mutt_events_received_total", "events in requests", ["route"])
EVENTS_ACCEPTED = Counter("mutt_events_accepted_total", "events published to the stream")
EVENTS_DUPLICATE = Counter("mutt_events_duplicate_total", "events acknowledged as duplicates")
EVENTS_REJECTED = Counter("mutt_events_rejected_total", "events or requests refused", ["reason"])
UNKNOWN_SEVERITY = Counter(
    "mutt_ingest_unknown_severity_total",
    "events accepted with a severity ingest could not read (raw value kept, default used)",
    ["kind"],
)
AUTH_FAILURES = Counter(
    "mutt_ingest_auth_failures_total", "requests with missing or invalid credentials", ["reason"]
)
AUTH_THROTTLED = Counter(
    "mutt_ingest_auth_throttled_total",
    "requests answered 429 because their address failed authentication too often",
)
CONNECTIONS_REFUSED = Counter(
    "mutt_ingest_connections_refused_total",
    "connections of a throttled address answered 429 at accept, before any request was read",
)

# stream stages (worker and relay)
STAGE_EVENTS = Counter("mutt_stage_events_total", "events handled by a stage", ["stage", "outcome"])
STAGE_BATCH_SECONDS = Histogram(
    "mutt_stage_batch_seconds",
    "time to handle and settle one batch",
    ["stage"],
    buckets=LATENCY_BUCKETS,
)
STAGE_RECLAIMED = Counter(
    "mutt_stage_reclaimed_total", "entries taken from dead consumers", ["stage"]
)

# alert
RULES_MATCHED = Counter("mutt_rules_matched_total", "events matched per rule", ["rule_id"])
UNHANDLED_EVENTS = Counter("mutt_unhandled_events_total", "events no rule matched")
META_ALERTS = Counter("mutt_unhandled_meta_alerts_total", "meta-alerts for unhandled events")
DECISIONS = Counter("mutt_decisions_total", "handling decisions", ["handling", "environment"])
RULES_VERSION = Gauge("mutt_rules_version", "rule-set version in use", multiprocess_mode="max")
RULES_LOADED = Gauge("mutt_rules_loaded", "rules in the cache", multiprocess_mode="max")
RULES_RELOAD_SECONDS = Histogram(
    "mutt_rules_reload_seconds", "time to load and compile the rules", buckets=LATENCY_BUCKETS
)
RULES_RELOAD_FAILURES = Counter("mutt_rules_reload_failures_total", "failed rule reloads")
AUDIT_ROWS = Counter("mutt_audit_rows_total", "audit rows written", ["result"])
CORRELATION = Counter(
    "mutt_correlation_total",
    "correlation verdicts on raised alerts, clears and timers (emit, dup, silenced, storm...)",
    ["verdict"],
)
ALERTMANAGER_RESOLUTIONS = Counter(
    "mutt_alertmanager_resolutions_total",
    "Alertmanager resolved notifications: resolved an open alert, nothing open, or flapping",
    ["outcome"],
)

# HTTP functions (Knative's autoscaler scales on what this shows)
HTTP_IN_FLIGHT = Gauge(
    "mutt_http_requests_in_flight",
    "requests a function is handling now (what Knative's queue-proxy reports)",
    ["function"],
    multiprocess_mode="livesum",
)

# the relay (mutt relay)
RELAY_REQUESTS = Counter(
    "mutt_relay_requests_total",
    "relay POSTs by answer: HTTP status, unreachable, invalid",
    ["stage", "status"],
)
RELAY_BACKOFF = Counter(
    "mutt_relay_backoffs_total",
    "times the relay backed off a target (unreachable, 5xx, 429): entries retried, never DLQ'd",
    ["stage"],
)

# forward
DELIVERIES = Counter("mutt_deliveries_total", "delivery attempts by result", ["sink", "outcome"])
DELIVERY_SECONDS = Histogram(
    "mutt_delivery_seconds", "time of one delivery attempt", ["sink"], buckets=LATENCY_BUCKETS
)
DEFERRALS = Counter(
    "mutt_deliveries_deferred_total", "deliveries parked for later", ["sink", "reason"]
)
STUCK_DELIVERIES = Counter(
    "mutt_deliveries_stuck_total",
    "retries of alerts past forward_max_attempts (still retried: an outage never dead-letters)",
    ["sink"],
)
BREAKER_STATE = Gauge(
    "mutt_breaker_state",
    "circuit breaker: 0 closed, 1 half-open, 2 open",
    ["sink"],
    multiprocess_mode="max",
)
# Retries, parking and backlogs are part of it: buckets up to an hour.
ALERT_DELIVERY_LATENCY = Histogram(
    "mutt_alert_delivery_latency_seconds",
    "end to end: event received by ingest to alert delivered at the sink",
    ["sink"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)

# janitor
JANITOR_TASKS = Counter("mutt_janitor_tasks_total", "janitor task runs", ["task", "result"])

# audit partitions (set by the janitor's partitions task) and Vault (shared.vault).
# Labelled, so a process that never measured them exports no series (not a 0).
AUDIT_PARTITIONS_AHEAD = Gauge(
    "mutt_audit_partitions_ahead",
    "months of audit partitions beyond the current one, at the janitor's last reading",
    ["schema"],
    multiprocess_mode="mostrecent",
)
AUDIT_DEFAULT_ROWS = Gauge(
    "mutt_audit_partition_default_rows",
    "rows in the DEFAULT audit partition, at the janitor's last reading",
    ["schema"],
    multiprocess_mode="mostrecent",
)
VAULT_FAILURES = Counter(
    "mutt_secrets_vault_failures_total",
    "failed Vault calls: token renewal, AppRole login, secrets read",
    ["operation"],
)

BREAKER_VALUES = {"closed": 0, "half_open": 1, "open": 2}


class StreamCollector(Collector):
    """Stream lengths, backlog, oldest pending age, parked entries and DLQ depths, on scrape."""

    def __init__(self, r: redis.Redis, keys: Keys) -> None:
        self._r = r
        self._keys = keys

    def collect(self) -> Iterable[GaugeMetricFamily]:
        length = GaugeMetricFamily("mutt_stream_length", "entries in the stream", labels=["stream"])
        pending = GaugeMetricFamily(
            "mutt_stream_pending", "delivered, not yet acknowledged", labels=["stream", "group"]
        )
        lag = GaugeMetricFamily(
            "mutt_stream_lag", "entries not yet delivered to the group", labels=["stream", "group"]
        )
        oldest = GaugeMetricFamily(
            "mutt_stream_oldest_pending_seconds",
            "age of the oldest pending entry",
            labels=["stream", "group"],
        )
        parked = GaugeMetricFamily(
            "mutt_stream_parked", "entries parked for later", labels=["stream"]
        )
        dlq = GaugeMetricFamily("mutt_dlq_depth", "dead letters per stage", labels=["stage"])
        k = self._keys
        # One sample per stream name: the partitions of a stream are summed (the
        # oldest pending age is the oldest of any), so dashboards see one pipeline.
        sums: dict[tuple[str, ...], float] = {}

        def add(family: str, labels: tuple[str, ...], value: float, oldest: bool = False) -> None:
            seen = sums.get((family, *labels), 0.0)
            sums[(family, *labels)] = max(seen, value) if oldest else seen + value

        try:
            now_ms = time.time() * 1000
            for stream, group in consumed(k):
                name = stream.rsplit(":", 1)[-1]
                add("length", (name,), float(self._r.xlen(stream)))
                add("parked", (name,), float(self._r.zcard(schedule_keys(stream)[0])))
                info = self._group(stream, group)
                if info is None:
                    continue
                add("pending", (name, group), float(info["pending"]))
                if info.get("lag") is not None:
                    add("lag", (name, group), float(info["lag"]))
                first: Any = self._r.xpending(stream, group)
                age = 0.0
                if first["pending"]:
                    low = (
                        first["min"].decode()
                        if isinstance(first["min"], bytes)
                        else str(first["min"])
                    )
                    age = max(0.0, (now_ms - int(low.split("-")[0])) / 1000)
                add("oldest", (name, group), age, oldest=True)
            for stage in CONSUMING_STAGES:
                for part in k.all_partitions():
                    add("dlq", (stage,), float(self._r.xlen(part.dlq(stage))))
        except redis.RedisError:
            return []
        families = {
            "length": length,
            "pending": pending,
            "lag": lag,
            "oldest": oldest,
            "parked": parked,
            "dlq": dlq,
        }
        for (family, *labels), value in sums.items():
            families[family].add_metric(labels, value)
        return [length, pending, lag, oldest, parked, dlq]

    def _group(self, stream: str, group: str) -> dict[str, Any] | None:
        try:
            groups: Any = self._r.xinfo_groups(stream)
        except redis.ResponseError:
            return None
        for g in groups:
            name = g["name"].decode() if isinstance(g["name"], bytes) else g["name"]
            if name == group:
                return dict(g)
        return None


_collector: StreamCollector | None = None


def watch_streams(r: redis.Redis, keys: Keys) -> None:
    """Expose stream depths from this process (once)."""
    global _collector
    if _collector is None:
        _collector = StreamCollector(r, keys)
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            REGISTRY.register(_collector)


def render() -> tuple[bytes, str]:
    """The exposition body and its content type, multi-process aware."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        if _collector is not None:
            registry.register(_collector)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
