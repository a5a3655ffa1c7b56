"""Which stream each stage consumes and how its handler is built."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shared.broker.keys import GROUP_ALERT, GROUP_AUDIT, GROUP_FORWARD
from shared.broker.stages import input_stream
from shared.context import Context
from shared.handler import Handler


@dataclass(frozen=True)
class Stage:
    name: str
    stream: Callable[[Context], str]
    make_handler: Callable[[Context], Handler]
    # Transient failures of this stage never dead-letter (an outage is not poison).
    max_deliveries: int | None = None


def _alert(ctx: Context) -> Handler:
    from functions.alert.build import make_alert_handler

    return make_alert_handler(ctx)


def _audit(ctx: Context) -> Handler:
    from functions.audit.build import make_audit_writer

    return make_audit_writer(ctx)


def _forward(ctx: Context) -> Handler:
    from functions.forward.handler import make_forward_handler

    return make_forward_handler(ctx)


WORKER_STAGES: dict[str, Stage] = {
    GROUP_ALERT: Stage(GROUP_ALERT, lambda ctx: input_stream(ctx.keys, GROUP_ALERT), _alert),
    GROUP_FORWARD: Stage(
        GROUP_FORWARD, lambda ctx: input_stream(ctx.keys, GROUP_FORWARD), _forward
    ),
    GROUP_AUDIT: Stage(
        GROUP_AUDIT,
        lambda ctx: input_stream(ctx.keys, GROUP_AUDIT),
        _audit,
        max_deliveries=1_000_000,
    ),
}

# functions-framework entry points: name -> (source file, target).
HTTP_FUNCTIONS: dict[str, str] = {
    "ingest": "functions/ingest/main.py",
    "alert": "functions/alert/main.py",
    "forward": "functions/forward/main.py",
    "janitor": "functions/janitor/main.py",
    "audit": "functions/audit/main.py",
    "admin": "functions/admin/main.py",
}
