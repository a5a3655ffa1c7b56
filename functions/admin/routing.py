"""The route table: every operation with its method, role and OpenAPI description.

Views register themselves with ``@route``; the dispatcher (``app``), the
OpenAPI document and the docs page all read the same table, so a route
cannot exist undocumented or unprotected.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import flask
import orjson
import pg8000.native
from werkzeug.routing import Map, Rule

from functions.admin.errors import ApiError, bad
from functions.admin.keys import Principal
from functions.admin.session import Session
from shared.context import Context

View = Callable[["Call"], flask.Response]
JSON = "application/json"


@dataclass(frozen=True)
class Param:
    name: str
    where: str  # path or query
    schema: dict[str, Any]
    required: bool = False
    description: str = ""


@dataclass(frozen=True)
class Route:
    path: str  # werkzeug syntax: /api/v1/rules/<int:rule_id>
    method: str
    role: str | None  # None: no authentication
    surface: str  # v1, v2, console, ops
    view: View
    summary: str
    params: tuple[Param, ...] = ()
    body: dict[str, Any] | None = None
    responses: dict[int, str] = field(default_factory=dict)
    produces: str = JSON

    @property
    def endpoint(self) -> str:
        return f"{self.method} {self.path}"


ROUTES: list[Route] = []


def route(
    path: str,
    method: str,
    *,
    role: str | None,
    surface: str,
    summary: str,
    params: tuple[Param, ...] = (),
    body: dict[str, Any] | None = None,
    responses: dict[int, str] | None = None,
    produces: str = JSON,
) -> Callable[[View], View]:
    def register(view: View) -> View:
        ROUTES.append(
            Route(
                path,
                method,
                role,
                surface,
                view,
                summary,
                params,
                body,
                responses or {},
                produces,
            )
        )
        return view

    return register


def url_map() -> Map:
    return Map(
        [Rule(r.path, endpoint=r.endpoint, methods=[r.method]) for r in ROUTES],
        strict_slashes=False,
        merge_slashes=False,
    )


@dataclass
class Call:
    """One request being served: what matched, who asks, and the function's clients."""

    request: flask.Request
    route: Route
    args: dict[str, Any]
    ctx: Context
    principal: Principal | None = None
    session: Session | None = None

    @property
    def conn(self) -> pg8000.native.Connection:
        return self.ctx.pg()

    @property
    def who(self) -> str:
        return self.principal.name if self.principal else "anonymous"

    @cached_property
    def body(self) -> dict[str, Any]:
        """The JSON object sent; 400 for anything else."""
        raw = self.request.get_data(cache=True)
        if not raw.strip():
            return {}
        ctype = (self.request.mimetype or "").lower()
        if ctype and ctype != JSON and not ctype.endswith("+json"):
            raise ApiError(415, f"send {JSON}, not {ctype}", field="Content-Type")
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ApiError(400, "request body is not valid JSON", field="body") from None
        if not isinstance(doc, dict):
            raise ApiError(400, "request body must be a JSON object", field="body")
        return doc

    def query(self, name: str) -> str | None:
        value = self.request.args.get(name)
        if value is None:
            return None
        if "\x00" in value:
            raise bad(name, "must not contain NUL characters")
        return value.strip() or None

    def query_int(self, name: str, default: int, low: int, high: int, *, clamp: bool) -> int:
        """An integer parameter: clamped into range (v1, as the original) or refused (v2)."""
        text = self.query(name)
        if text is None:
            return default
        try:
            value = int(text)
        except ValueError:
            if clamp:
                return default
            raise bad(name, f"{text!r} is not an integer") from None
        if clamp:
            return min(high, max(low, value))
        if not low <= value <= high:
            raise bad(name, f"{value} is outside {low}..{high}")
        return value
