"""What admin borrows from the ``mutt`` command until it moves to its owner.

ADR 0007 says a function never imports ``mutt/``. These are the known
exceptions, each behind one function so that moving the code (DLQ replay to
``functions/forward/``, the status document and the audited-event reader to
the functions that own their data) changes one import line here and
nothing else. Imports are lazy: they pull in the command modules only when
an operator asks for these pages.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from types import ModuleType
from typing import Any

import pg8000.native

from shared.context import Context


def dlq() -> ModuleType:
    """The one DLQ implementation (list, find, atomic Lua replay) the CLI uses."""
    from mutt.commands import dlq as module

    return module


def status(ctx: Context) -> dict[str, Any]:
    """``mutt status --json``'s document: streams, backlog, DLQs, breakers, rules, partitions."""
    from mutt.commands.status import collect

    return collect(ctx)


def audited_events(
    conn: pg8000.native.Connection, since: datetime, until: datetime, limit: int
) -> Iterator[tuple[Any, int | None, str, str | None]]:
    """(event, rule, handling, team) of audited events, as ``mutt rules backtest`` reads them."""
    from mutt.commands.backtest import audited

    return audited(conn, since, until, limit)
