"""What every sink is: a named target that takes one alert and says what happened.

A sink only talks to its vendor and classifies the answer. Rate limits,
the circuit breaker, retries, scheduling and effectively-once bookkeeping
belong to the delivery engine around it, so they work the same for every
vendor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from shared.models import Alert

Outcome = Literal["delivered", "retry", "permanent"]


@dataclass(frozen=True)
class SendResult:
    """The classified answer of one delivery attempt.

    ``retry``: 429, 5xx, timeouts, connection errors (counts as a breaker
    failure); ``permanent``: any other 4xx, or a payload the vendor can never
    accept (goes to the DLQ with ``detail``); ``delivered``: 2xx.
    """

    outcome: Outcome
    status: int | None = None
    detail: str = ""
    retry_after_seconds: float | None = None
    duplicate: bool = False  # the sink itself recognised an earlier delivery


class Sink(Protocol):
    """A delivery target."""

    name: str

    def send(self, alert: Alert) -> SendResult:
        """Deliver one alert; never raises for vendor or network failures."""
        ...

    def health(self) -> bool:
        """A cheap check that the vendor is reachable (no side effects)."""
        ...
