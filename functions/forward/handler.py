"""Build the forward handler (the delivery engine) from settings."""

from __future__ import annotations

from functions.forward.config import build, default_config, load_config
from functions.forward.delivery import Deliverer
from shared.context import Context


def make_forward_handler(ctx: Context) -> Deliverer:
    """The Deliverer for this process's settings and forward configuration."""
    settings = ctx.settings
    config = (
        load_config(settings.forward_config)
        if settings.forward_config
        else default_config(settings.sink_path)
    )
    sinks, router = build(config, ctx.secrets)
    return Deliverer(ctx.redis, ctx.keys, sinks, router, ctx.dynamic, config.rate_limits)
