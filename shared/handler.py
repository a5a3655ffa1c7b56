"""The one contract every function implements: events in, one outcome per event out.

Both runtimes call it: the stream worker in-process, the HTTP adapter per
request (docs/architecture.md, "One handler, two runtimes"). The outcome
says what the transport must do: publish the replies and acknowledge,
dead-letter (permanent failure), or leave the event for a later retry
(transient failure).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from cloudevents.http import CloudEvent


@dataclass(frozen=True)
class Outcome:
    """The result for one input event.

    Beyond replies, an accepted event may leave work for later (``later``:
    amended copies parked for a delay) and partial failures (``dead``:
    copies dead-lettered with a reason), e.g. an alert delivered to one sink,
    rate-limited at a second and refused by a third. The transport applies
    all of it together with the acknowledgement, in one transaction.
    """

    status: Literal["ok", "reject", "retry"]
    replies: tuple[CloudEvent, ...] = ()
    reason: str = ""
    later: tuple[tuple[CloudEvent, float], ...] = ()
    dead: tuple[tuple[CloudEvent, str], ...] = ()

    @classmethod
    def ok(
        cls,
        *replies: CloudEvent,
        later: Sequence[tuple[CloudEvent, float]] = (),
        dead: Sequence[tuple[CloudEvent, str]] = (),
    ) -> Outcome:
        return cls("ok", tuple(replies), later=tuple(later), dead=tuple(dead))

    @classmethod
    def reject(cls, reason: str) -> Outcome:
        """Permanently bad: never retried (HTTP 400, stream DLQ)."""
        return cls("reject", reason=reason)

    @classmethod
    def defer(cls, event: CloudEvent, delay_seconds: float) -> Outcome:
        """Come back to ``event`` (possibly amended) after ``delay_seconds``.

        The input is acknowledged and ``event`` parked in the same transaction,
        so waiting never blocks other events and never loses this one.
        """
        return cls.ok(later=[(event, delay_seconds)])

    @classmethod
    def retry(cls, reason: str) -> Outcome:
        """Transient failure: try again later (HTTP 503, stream stays pending)."""
        return cls("retry", reason=reason)


class Handler(Protocol):
    """A function's core. ``handle`` must return one outcome per event, in order."""

    stage: str

    def handle(self, events: Sequence[CloudEvent]) -> list[Outcome]: ...
