"""The forward configuration file: sinks, routes and per-sink rate limits.

``MUTT_FORWARD_CONFIG`` names a YAML file like::

    sinks:
      - {name: pd-netops, type: pagerduty, routing_key_secret: pd_netops_key}
      - {name: moog, type: moogsoft, url: https://x.moogsoft.ai/..., api_key_secret: moog_key}
    routes:
      - match: {team: [NetOps], handling: [Page_and_ticket, Page_only]}
        sinks: [pd-netops, moog]
      - match: {handling: [Ticket_only]}
        sinks: [moog]
    default: [moog]            # alerts no route matches
    rate_limits: {moog: 50}    # per window (forward_rate_window_ms); else forward_rate_limit

Without the file every alert goes to the file sink (``MUTT_SINK_FILE``).
The whole file is validated at start: an unknown sink in a route, a bad URL
or an unresolvable secret stops the process with one line saying which.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from functions.forward.routing import Route, Router
from functions.forward.sinks.base import Sink
from functions.forward.sinks.http import HttpSession
from functions.forward.sinks.registry import SinkConfig, SinkConfigError, build_sinks
from shared.errors import ConfigError
from shared.secrets import Secrets


class ForwardConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sinks: list[SinkConfig] = Field(min_length=1)
    routes: list[Route] = Field(default_factory=list)
    default: list[str] = Field(default_factory=list)
    rate_limits: dict[str, int] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_sinks(self) -> ForwardConfig:
        names = {s.name for s in self.sinks}
        used = {n for r in self.routes for n in r.sinks} | set(self.default) | set(self.rate_limits)
        unknown = sorted(used - names)
        if unknown:
            raise ValueError(
                f"unknown sink(s) {', '.join(unknown)}; defined: {', '.join(sorted(names))}"
            )
        if not self.routes and not self.default:
            raise ValueError("give at least one route or a default list of sinks")
        if any(v < 0 for v in self.rate_limits.values()):
            raise ValueError("rate limits must be 0 (off) or positive")
        return self


def default_config(sink_file: Path) -> ForwardConfig:
    return ForwardConfig.model_validate(
        {"sinks": [{"name": "file", "type": "file", "path": str(sink_file)}], "default": ["file"]}
    )


def load_config(path: Path) -> ForwardConfig:
    """Read and validate the file; ``ConfigError`` names the file and the problem."""
    try:
        doc: Any = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"MUTT_FORWARD_CONFIG: cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"MUTT_FORWARD_CONFIG: {path} is not valid YAML: {exc}") from None
    try:
        return ForwardConfig.model_validate(doc)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "file"
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"MUTT_FORWARD_CONFIG: {path}: {where}: {msg}") from None


def build(config: ForwardConfig, secrets: Secrets) -> tuple[dict[str, Sink], Router]:
    """The sinks (credentials resolved now) and the router."""
    try:
        sinks = build_sinks(config.sinks, session=HttpSession(), resolve_secret=secrets.require)
    except SinkConfigError as exc:
        raise ConfigError(f"MUTT_FORWARD_CONFIG: {exc}") from None
    return sinks, Router(config.routes, config.default)
