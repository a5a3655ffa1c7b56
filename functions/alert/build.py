"""Assemble the alert stage's handlers from a process context."""

from __future__ import annotations

from collections.abc import Callable

import pg8000.native

from functions.alert.cache import RuleCache
from functions.alert.correlation import Correlator
from functions.alert.handler import AlertHandler
from functions.alert.unhandled import UnhandledCounter
from shared.context import Context
from shared.db.connection import connect_pg
from shared.dynconfig import DynamicConfig


def _connector(ctx: Context) -> Callable[[], pg8000.native.Connection]:
    _, url = ctx.settings.require_urls()
    schema = ctx.settings.database_schema
    return lambda: connect_pg(url, schema)


def make_alert_handler(ctx: Context, *, warm: bool = True) -> AlertHandler:
    """The alert handler; ``warm`` loads the rules now, before the first event."""
    cache = RuleCache(_connector(ctx), ctx.redis, ctx.settings.namespace)
    if warm:
        cache.warm()
    counter = UnhandledCounter(
        ctx.redis, ctx.settings.namespace, ctx.settings.unhandled_fingerprint
    )
    dyn = DynamicConfig(ctx.redis, ctx.keys.config)
    team = ctx.settings.default_team
    correlator = Correlator(ctx.redis, ctx.settings.namespace, dyn, team)
    return AlertHandler(cache, counter, dyn, team, correlator)
