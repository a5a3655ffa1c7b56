"""Before and after one sink's sends: delivered markers, the circuit breaker, the rate limit.

The breaker of a sink is shared by all forward instances (one Redis hash,
``breaker.lua``). Closed: everything goes through; ``threshold``
consecutive failures open it. Open: nothing goes through for ``cooldown``;
alerts are parked, not failed, so an outage burns no retries. Half-open:
exactly one probe at a time (a probe that never reports expires after
``probe_timeout``); its success closes the breaker, its failure re-opens it.
The sink's rate limit is global too (``shared/sliding_window.lua``) and
grants what is available (partial, unlike ingest's all or nothing).

Each step is one script call the delivery engine queues (``gate`` right
before a sink's sends, ``finish`` right after) so that it can pipeline one
sink's finish with the next sink's gate; ``gated`` and ``finished`` read
the replies. These functions are the only way the scripts are called, by
the engine and by the tests alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis

from shared.broker.keys import Keys
from shared.lua import Call, LuaScript

GATE = LuaScript.from_files(
    "shared/sliding_window.lua", "functions/forward/breaker.lua", "functions/forward/gate.lua"
)
FINISH = LuaScript.from_files("functions/forward/breaker.lua", "functions/forward/finish.lua")
MARKER_TTL_SECONDS = 7 * 86_400


@dataclass(frozen=True)
class Limits:
    """The live settings a gate runs with (``forward_*`` and ``breaker_*`` knobs)."""

    cooldown_ms: int
    probe_timeout_ms: int
    rate_limit: int  # permits per window; 0 = no limit
    rate_window_ms: int


@dataclass(frozen=True)
class Gated:
    """What of a sink's jobs may go now.

    ``done`` has one flag per alert id given to ``gate``: ``True`` when the
    sink accepted it before (a redelivered entry: not sent again).
    ``admitted`` (by the breaker) and ``granted`` (by the rate limit, out of
    ``admitted``) count the others, in order; both 0 when none is left.
    """

    done: tuple[bool, ...]
    admitted: int
    state: str  # the breaker's, "" when nothing was left to admit
    breaker_wait_ms: int
    granted: int
    limit_wait_ms: int


@dataclass(frozen=True)
class Finished:
    """The breaker after the outcomes were recorded (``state`` "" when there were none)."""

    state: str
    failures: int


def gate(keys: Keys, sink: str, alert_ids: Sequence[str], limits: Limits) -> Call:
    """The check before sending ``alert_ids`` (distinct) to ``sink``: markers, breaker, limit."""
    return Call(
        GATE,
        [
            keys.breaker(sink),
            keys.sink_rate_limit(sink),
            *(keys.delivered_marker(sink, a) for a in alert_ids),
        ],
        [limits.cooldown_ms, limits.probe_timeout_ms, limits.rate_limit, limits.rate_window_ms],
    )


def gated(reply: Any) -> Gated:
    admitted, state, breaker_wait, granted, limit_wait, done = reply
    return Gated(
        done=tuple(flag == "1" for flag in _text(done)),
        admitted=int(admitted),
        state=_text(state),
        breaker_wait_ms=int(breaker_wait),
        granted=int(granted),
        limit_wait_ms=int(limit_wait),
    )


def finish(
    keys: Keys, sink: str, delivered: Sequence[str], outcomes: Sequence[bool], threshold: int
) -> Call:
    """After the sends: markers of the ``delivered`` alert ids, then the breaker's record.

    ``outcomes`` are the sends' successes in the order they happened (a
    vendor's refusal is a success for the breaker: the sink is up).
    """
    return Call(
        FINISH,
        [keys.breaker(sink), *(keys.delivered_marker(sink, a) for a in delivered)],
        ["".join("S" if ok else "F" for ok in outcomes), threshold, MARKER_TTL_SECONDS],
    )


def finished(reply: Any) -> Finished:
    state, failures = reply
    return Finished(_text(state), int(failures))


def state(r: redis.Redis, keys: Keys, sink: str) -> str:
    """The sink's breaker state now: ``closed``, ``open`` or ``half_open``."""
    raw = r.hget(keys.breaker(sink), "state")
    return _text(raw) if raw else "closed"


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
