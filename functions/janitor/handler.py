"""janitor: periodic housekeeping, triggered by cron (PingSource, timer, CLI).

Foundation version: keeps audit partitions created ahead. Reclaim,
retention and replay arrive with the "janitor" issue.
"""

from __future__ import annotations

from collections.abc import Sequence

from cloudevents.http import CloudEvent
from pydantic import BaseModel, ValidationError

from functions.janitor.partitions import ensure_ahead
from shared.context import Context
from shared.handler import Outcome
from shared.models import JanitorRequest


class JanitorReport(BaseModel):
    """What one run did."""

    task: str
    partitions: list[str] = []


class JanitorHandler:
    """Ping events in; side effects on PostgreSQL and Redis; no replies."""

    stage = "janitor"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def handle(self, events: Sequence[CloudEvent]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for event in events:
            try:
                request = JanitorRequest.model_validate(event.data or {})
            except ValidationError as exc:
                outcomes.append(
                    Outcome.reject(f"invalid janitor request: {exc.errors()[0]['msg']}")
                )
                continue
            self.run(request.task)
            outcomes.append(Outcome.ok())
        return outcomes

    def run(self, task: str) -> JanitorReport:
        report = JanitorReport(task=task)
        if task in ("all", "partitions"):
            report.partitions = ensure_ahead(
                self.ctx.pg(), self.ctx.settings.partitions_ahead_months
            )
        return report
