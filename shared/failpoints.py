"""Failpoints: deterministic crashes for tests that prove nothing is lost.

``MUTT_FAILPOINTS="forward.after_deliver=37"`` makes the process SIGKILL
itself the 37th time it passes ``failpoint("forward.after_deliver")``. With
the variable unset a failpoint costs one dict lookup.
"""

from __future__ import annotations

import os
import signal

_counts: dict[str, int] = {}


def _parse(spec: str) -> dict[str, int]:
    points: dict[str, int] = {}
    for item in spec.split(","):
        name, _, after = item.strip().partition("=")
        if name:
            points[name] = int(after or "1")
    return points


_armed = _parse(os.environ.get("MUTT_FAILPOINTS", ""))


def failpoint(name: str) -> None:
    """Die here (SIGKILL, no cleanup) when this point is armed and its count is reached."""
    if not _armed or name not in _armed:
        return
    _counts[name] = _counts.get(name, 0) + 1
    if _counts[name] >= _armed[name]:
        os.kill(os.getpid(), signal.SIGKILL)
