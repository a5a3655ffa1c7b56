"""Service level objectives, measured from MUTT's own streams over the last hour.

- ``delivery``: deliveries that reached their sink (``io.mutt.alert.delivered.v1``
  with outcome ``delivered`` or ``duplicate``) out of all reported, target 99.5 %;
- ``processing``: events and alerts that did not end in a dead-letter queue,
  target 99.9 %.

The burn rate is the error rate divided by the error budget (1 - target):
1 spends the budget exactly over the SLO period. Status: ``ok`` below 1,
``warning`` below 6, ``breaching`` below 14.4, ``critical`` from 14.4 (the
multi-window alerting thresholds of the Google SRE workbook). Counting
stops at ``CAP`` entries per stream; ``capped`` says when it did.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import orjson
import redis

from shared.broker.keys import Keys
from shared.envelope import FIELD

WINDOW_SECONDS = 3600
CAP = 100_000
PAGE = 1000
TARGETS = {"delivery": 0.995, "processing": 0.999}


@dataclass(frozen=True)
class SloStatus:
    name: str
    target: float
    window_seconds: int
    total: int
    errors: int
    error_rate: float
    burn_rate: float
    status: str
    capped: bool


def classify(burn_rate: float) -> str:
    if burn_rate < 1:
        return "ok"
    if burn_rate < 6:
        return "warning"
    if burn_rate < 14.4:
        return "breaching"
    return "critical"


def _status(name: str, total: int, errors: int, capped: bool) -> SloStatus:
    target = TARGETS[name]
    rate = errors / total if total else 0.0
    burn = rate / (1 - target)
    return SloStatus(
        name,
        target,
        WINDOW_SECONDS,
        total,
        errors,
        round(rate, 6),
        round(burn, 3),
        classify(burn),
        capped,
    )


def _scan(r: redis.Redis, stream: str, since_ms: int, fields: bool) -> tuple[list[Any], bool]:
    """Entries newer than ``since_ms``, newest first, at most ``CAP``."""
    found: list[Any] = []
    upper = "+"
    while len(found) < CAP:
        page: Any = r.xrevrange(stream, upper, f"{since_ms}-0", count=PAGE)
        found += page if fields else [None] * len(page)
        if len(page) < PAGE:
            return found, False
        last = page[-1][0]
        upper = "(" + (last.decode() if isinstance(last, bytes) else str(last))
    return found, True


def _count(r: redis.Redis, stream: str, since_ms: int) -> tuple[int, bool]:
    entries, capped = _scan(r, stream, since_ms, fields=False)
    return len(entries), capped


def measure(r: redis.Redis, keys: Keys, now: float | None = None) -> list[SloStatus]:
    since_ms = int(((now or time.time()) - WINDOW_SECONDS) * 1000)
    deliveries, capped_d = _scan(r, keys.delivered, since_ms, fields=True)
    failed = 0
    for _, entry in deliveries:
        try:
            data = orjson.loads(entry.get(FIELD, b"{}")).get("data") or {}
        except (orjson.JSONDecodeError, AttributeError):
            continue
        if isinstance(data, dict) and data.get("outcome") == "failed":
            failed += 1
    events, capped_e = _count(r, keys.events, since_ms)
    alerts, capped_a = _count(r, keys.alerts, since_ms)
    dead = 0
    capped_dlq = False
    for stage in ("alert", "forward", "audit"):
        n, c = _count(r, keys.dlq(stage), since_ms)
        dead, capped_dlq = dead + n, capped_dlq or c
    return [
        _status("delivery", len(deliveries), failed, capped_d),
        _status(
            "processing",
            events + alerts,
            min(dead, events + alerts),
            capped_e or capped_a or capped_dlq,
        ),
    ]


def report(r: redis.Redis, keys: Keys) -> dict[str, Any]:
    slos = measure(r, keys)
    worst = max((s.status for s in slos), key=["ok", "warning", "breaching", "critical"].index)
    return {"status": worst, "slos": [asdict(s) for s in slos]}
