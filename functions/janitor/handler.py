"""janitor: housekeeping on a schedule (PingSource, systemd timer, ``mutt janitor run``).

Tasks: ``reclaim`` (work stuck on dead consumers), ``partitions`` (created
ahead, strays moved out of DEFAULT), ``retention`` (old partitions, old
config audit, processed stream entries), ``replay`` (dead letters an outage
left behind, once their sink's breaker is not open; ``replay.py``). Each
task is idempotent and runs under its own Redis lock, so two janitors started
together never double-act; a task that finds the lock taken reports
``skipped``. The run's report is the
reply CloudEvent (``io.mutt.janitor.completed.v1``).
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, is_dataclass
from typing import Any

from cloudevents.http import CloudEvent
from pydantic import BaseModel, ValidationError

from functions.janitor import partitions, reclaim, replay, retention
from functions.janitor.lock import task_lock
from shared.broker.stages import consumed
from shared.context import Context
from shared.handler import Outcome
from shared.metrics import AUDIT_DEFAULT_ROWS, AUDIT_PARTITIONS_AHEAD, JANITOR_TASKS
from shared.models import TYPE_JANITOR_REPORT, JanitorRequest

log = logging.getLogger(__name__)
TASKS = ("reclaim", "partitions", "retention", "replay")
SOURCE = "/mutt/janitor"


class JanitorReport(BaseModel):
    """What one run did, task by task (``skipped`` when another instance held the lock)."""

    task: str
    results: dict[str, Any] = {}
    skipped: list[str] = []
    errors: dict[str, str] = {}


class JanitorHandler:
    """Ping events in; side effects on PostgreSQL and Redis; the report out."""

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
            report = self.run(request.task)
            reply = CloudEvent(
                {"type": TYPE_JANITOR_REPORT, "source": SOURCE, "id": str(uuid.uuid4())},
                report.model_dump(mode="json"),
            )
            outcomes.append(Outcome.ok(reply))
        return outcomes

    def run(self, task: str) -> JanitorReport:
        report = JanitorReport(task=task)
        for name in TASKS if task == "all" else (task,):
            key = self.ctx.keys.janitor_lock(name)
            with task_lock(self.ctx.redis, key, self.ctx.settings.janitor_lock_seconds) as held:
                if not held:
                    JANITOR_TASKS.labels(name, "skipped").inc()
                    report.skipped.append(name)
                    continue
                try:
                    result = self._task(name)()
                    JANITOR_TASKS.labels(name, "ok").inc()
                    report.results[name] = asdict(result) if is_dataclass(result) else result  # type: ignore[arg-type]
                except Exception as exc:  # one failing task must not stop the others
                    JANITOR_TASKS.labels(name, "error").inc()
                    log.exception("janitor task %s failed", name)
                    report.errors[name] = f"{type(exc).__name__}: {exc}"
        return report

    def _task(self, name: str) -> Callable[[], object]:
        return {
            "reclaim": self._reclaim,
            "partitions": self._partitions,
            "retention": self._retention,
            "replay": self._replay,
        }[name]

    def _reclaim(self) -> object:
        s = self.ctx.settings
        return reclaim.run(
            self.ctx.redis, self.ctx.keys, s.claim_min_idle_seconds, s.max_deliveries
        )

    def _partitions(self) -> object:
        s = self.ctx.settings
        conn = self.ctx.pg()
        try:
            report = partitions.run(conn, s.partitions_ahead_months, s.audit_retention_days)
        except Exception:
            # The gauges must show the partitions as they are, above all when the
            # task cannot create them; the task's own error is what is reported.
            with contextlib.suppress(Exception):
                self._export_partitions(partitions.health(conn))
            raise
        self._export_partitions(report)
        return report

    def _export_partitions(self, health: partitions.PartitionReport) -> None:
        schema = self.ctx.settings.database_schema
        # No monthly partition at all: as bad as none ahead, one below that.
        ahead = health.months_ahead if health.months_ahead is not None else -1
        AUDIT_PARTITIONS_AHEAD.labels(schema).set(ahead)
        AUDIT_DEFAULT_ROWS.labels(schema).set(health.default_rows)

    def _retention(self) -> object:
        s = self.ctx.settings
        report = retention.RetentionReport()
        conn = self.ctx.pg()
        retention.audit(conn, s.audit_retention_days, s.audit_retention_mode, report)
        retention.config_audit(conn, s.config_audit_retention_days, report)
        streams = [stream for stream, _ in consumed(self.ctx.keys)]
        retention.trim_streams(
            self.ctx.redis, streams, s.stream_keep_minutes, int(time.time() * 1000), report
        )
        return report

    def _replay(self) -> object:
        return replay.run(self.ctx.redis, self.ctx.keys)
