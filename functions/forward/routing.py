"""Routing: which sinks an alert goes to, by team, handling, environment and severity.

Routes are tried in order; the first that matches decides, unless it says
``continue: true``, in which case later matching routes add their sinks too
(the Alertmanager convention). An alert no route matches goes to the
``default`` sinks; if there are none it is dead-lettered, never dropped.
"""

from __future__ import annotations

from typing import get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.models import Alert, Handling

# The environments an alert can carry: a route naming any other could never match.
ENVIRONMENTS: tuple[str, ...] = get_args(Alert.model_fields["environment"].annotation)


class RouteMatch(BaseModel):
    """Conditions of a route; an omitted condition matches everything.

    A condition that could never match (an empty list, an environment no
    alert carries) is refused at load: it would silently send its alerts to
    later routes or the default instead.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    team: list[str] | None = Field(default=None, min_length=1)
    handling: list[Handling] | None = Field(default=None, min_length=1)
    environment: list[str] | None = Field(default=None, min_length=1)
    max_severity: int | None = Field(default=None, ge=0, le=7, description="0 = emergency only")

    @field_validator("environment")
    @classmethod
    def _known_environments(cls, value: list[str] | None) -> list[str] | None:
        unknown = sorted(set(value or ()) - set(ENVIRONMENTS))
        if unknown:
            known = ", ".join(ENVIRONMENTS)
            raise ValueError(f"unknown environment(s) {', '.join(unknown)}; alerts carry {known}")
        return value

    def matches(self, alert: Alert) -> bool:
        if self.team is not None and alert.team.lower() not in {t.lower() for t in self.team}:
            return False
        if self.handling is not None and alert.handling not in self.handling:
            return False
        if self.environment is not None and alert.environment not in self.environment:
            return False
        return self.max_severity is None or int(alert.severity) <= self.max_severity


class Route(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    match: RouteMatch = RouteMatch()
    sinks: list[str] = Field(min_length=1)
    continue_: bool = Field(default=False, alias="continue")


class Router:
    """Resolves an alert to an ordered list of sink names."""

    def __init__(self, routes: list[Route], default: list[str]) -> None:
        self.routes = routes
        self.default = default

    def route(self, alert: Alert) -> list[str]:
        chosen: list[str] = []
        for route in self.routes:
            if route.match.matches(alert):
                chosen += [s for s in route.sinks if s not in chosen]
                if not route.continue_:
                    break
        return chosen or list(self.default)

    def sink_names(self) -> set[str]:
        return {s for r in self.routes for s in r.sinks} | set(self.default)
