"""forward: deliver each alert to its sink, effectively once.

Foundation version: every alert goes to the file sink, whose index of
delivered alert ids makes a redelivered alert a no-op.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from cloudevents.http import CloudEvent
from pydantic import ValidationError

from functions.forward.sinks.file import FileSink
from shared.envelope import make_event
from shared.failpoints import failpoint
from shared.handler import Outcome
from shared.models import TYPE_ALERT, TYPE_DELIVERED, Alert, Delivery

SOURCE = "/mutt/forward"


class ForwardHandler:
    """Alerts in, delivery reports out."""

    stage = "forward"

    def __init__(self, sink: FileSink) -> None:
        self.sink = sink

    def handle(self, events: Sequence[CloudEvent]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        wrote = False
        for event in events:
            if event["type"] != TYPE_ALERT:
                outcomes.append(Outcome.reject(f"forward takes {TYPE_ALERT}, not {event['type']}"))
                continue
            try:
                alert = Alert.model_validate(event.data)
            except ValidationError as exc:
                outcomes.append(Outcome.reject(f"invalid alert: {_first_error(exc)}"))
                continue
            started = time.perf_counter()
            written = self.sink.send(alert)
            wrote = wrote or written
            failpoint("forward.after_deliver")
            report = Delivery(
                alert_id=alert.alert_id,
                sink=self.sink.name,
                outcome="delivered" if written else "duplicate",
                attempts=1,
                latency_seconds=time.perf_counter() - started,
            )
            reply = make_event(
                TYPE_DELIVERED, SOURCE, report, id=f"{alert.alert_id}:{self.sink.name}"
            )
            outcomes.append(Outcome.ok(reply))
        if wrote:
            self.sink.sync()
        return outcomes


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "data"
    return f"{where}: {err['msg']}"
