"""Timers: events the alert stage parks for itself, for work that is due later.

A flapping alert settles when nothing changed for a while, and a storm
window is summarized when its minute is over; no event may arrive to notice
either. The alert stage has no clock of its own, so it parks a timer event
(``Outcome.later``: acknowledged input and parked copy in one transaction)
that comes back through its input stream when due, on any instance, in both
runtimes. Timers are idempotent: the state in Redis says whether a timer is
still the live one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from cloudevents.http import CloudEvent

from shared.models import utcnow

TYPE_TIMER = "io.mutt.correlation.timer.v1"
SOURCE = "/mutt/alert/correlation"

TimerKind = Literal["flapping", "storm"]


@dataclass(frozen=True)
class Timer:
    """What to look at when due: a flapping key, or a storm window (scope + minute)."""

    kind: TimerKind
    key: str  # flapping: the alert's dedup key; storm: "host:<hostname>" or "global"
    due_ms: int
    bucket: int = 0  # storm: the epoch minute
    sample: dict[str, Any] | None = field(default=None, compare=False)  # storm: first alert
    cap: int = 0  # storm: the cap in force when the storm began

    def event(self, extensions: dict[str, str]) -> CloudEvent:
        """The timer as the CloudEvent parked in the alert stage's input stream."""
        attributes: dict[str, Any] = {
            "type": TYPE_TIMER,
            "source": SOURCE,
            "id": f"timer:{self.kind}:{self.bucket}:{self.due_ms}:{self.key}",
            "time": utcnow().isoformat(),
            "datacontenttype": "application/json",
        }
        attributes.update({k: v for k, v in extensions.items() if v})
        data = {
            "kind": self.kind,
            "key": self.key,
            "due_ms": self.due_ms,
            "bucket": self.bucket,
            "sample": self.sample,
            "cap": self.cap,
        }
        return CloudEvent(attributes, data)

    def delay(self, now_ms: int) -> float:
        """Seconds until due (0 when overdue)."""
        return max(0.0, (self.due_ms - now_ms) / 1000)


def parse_timer(ce: CloudEvent) -> Timer:
    """The timer in a parked event; ``ValueError`` when it is not one."""
    data: Any = ce.data
    if not isinstance(data, dict):
        raise ValueError("timer data is not an object")
    kind = data.get("kind")
    key = data.get("key")
    due = data.get("due_ms")
    if kind not in ("flapping", "storm") or not isinstance(key, str) or not key:
        raise ValueError("timer lacks a known kind or a key")
    if isinstance(due, bool) or not isinstance(due, int):
        raise ValueError("timer lacks due_ms")
    sample = data.get("sample")
    if kind == "storm" and not isinstance(sample, dict):
        raise ValueError("storm timer lacks its sample alert")
    return Timer(
        kind=kind,
        key=key,
        due_ms=due,
        bucket=int(data.get("bucket") or 0),
        sample=sample if isinstance(sample, dict) else None,
        cap=int(data.get("cap") or 0),
    )
