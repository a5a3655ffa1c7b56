"""Readiness checks shared by the HTTP functions and the worker ops server.

Kept apart from ``shared.http_function`` so a stream worker, which serves
``/readyz`` without Flask, does not import Flask (~130 ms of cold start).
"""

from __future__ import annotations

from collections.abc import Callable

from shared.context import Context

Probe = Callable[[Context], dict[str, str]]


def is_ok(check: str) -> bool:
    """``ok``, or ``ok (...)`` for a working but noteworthy state."""
    return check == "ok" or check.startswith("ok ")


def readiness(ctx: Context, probe: Probe | None = None) -> dict[str, str]:
    """Each dependency's state as ``ok`` or the reason it is not."""
    checks: dict[str, str] = {}
    try:
        ctx.redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"error: {type(exc).__name__}"
    if probe is not None:
        checks.update(probe(ctx))
    return checks
