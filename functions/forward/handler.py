"""Build the forward handler (the delivery engine) from settings.

Foundation of routing config: with no forward configuration file every
alert goes to the file sink. The vendor sinks and the routing file are
wired by ``functions.forward.config``.
"""

from __future__ import annotations

from functions.forward.delivery import Deliverer
from functions.forward.routing import Router
from functions.forward.sinks.base import Sink
from functions.forward.sinks.file import FileSink
from shared.context import Context
from shared.dynconfig import DynamicConfig


def make_forward_handler(ctx: Context) -> Deliverer:
    """The Deliverer for this process's settings."""
    sinks: dict[str, Sink] = {"file": FileSink(ctx.settings.sink_path)}
    router = Router([], default=["file"])
    dyn = DynamicConfig(ctx.redis, ctx.keys.config)
    return Deliverer(ctx.redis, ctx.keys, sinks, router, dyn)
