"""Routes without authentication: health, metrics, version, the console's static files."""

from __future__ import annotations

from importlib import resources

import flask

from functions.admin.app import json_response
from functions.admin.errors import ApiError
from functions.admin.routing import Call, Param, route
from shared.metrics import render
from shared.readiness import is_ok, readiness

API_VERSION = "2.0"
SUPPORTED = ["v1", "v2"]
STATIC = {"console.js": "text/javascript", "console.css": "text/css"}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mutt")
    except PackageNotFoundError:
        return "unknown"


@route(
    "/health",
    "GET",
    role=None,
    surface="ops",
    summary="health of the admin function and its servers",
    responses={200: "healthy", 503: "a server is unreachable"},
)
def health(call: Call) -> flask.Response:
    checks = readiness(call.ctx, None)
    try:
        call.conn.run("SELECT 1")
        checks["postgres"] = "ok"
    except Exception as exc:  # any failure means unhealthy, never a 500
        call.ctx.drop_pg()
        checks["postgres"] = f"error: {type(exc).__name__}"
    ok = all(is_ok(v) for v in checks.values())
    body = {
        "status": "healthy" if ok else "unhealthy",
        "service": "mutt-admin",
        "version": _version(),
        "redis": "connected" if is_ok(checks.get("redis", "ok")) else checks.get("redis"),
        "database": "connected" if is_ok(checks.get("postgres", "ok")) else checks.get("postgres"),
    }
    return json_response(body, 200 if ok else 503)


@route(
    "/healthz",
    "GET",
    role=None,
    surface="ops",
    summary="liveness (the process answers)",
    responses={200: "alive"},
)
def healthz(call: Call) -> flask.Response:
    return json_response({"status": "ok"})


@route(
    "/metrics",
    "GET",
    role=None,
    surface="ops",
    summary="Prometheus metrics",
    responses={200: "metrics"},
    produces="text/plain",
)
def metrics(call: Call) -> flask.Response:
    body, ctype = render()
    return flask.Response(body, 200, {"Content-Type": ctype})


@route(
    "/api/v1/version",
    "GET",
    role=None,
    surface="v1",
    summary="versions of MUTT and its API",
    responses={200: "versions"},
)
def version(call: Call) -> flask.Response:
    return json_response(
        {"version": _version(), "api_version": API_VERSION, "supported_versions": SUPPORTED}
    )


@route(
    "/static/<name>",
    "GET",
    role=None,
    surface="ops",
    summary="the console's script and style",
    params=(Param("name", "path", {"type": "string", "enum": sorted(STATIC)}, True),),
    responses={200: "the file", 404: "no such file"},
    produces="text/*",
)
def static(call: Call) -> flask.Response:
    name = call.args["name"]
    if name not in STATIC:
        raise ApiError(404, f"no static file {name!r}")
    body = resources.files("functions.admin").joinpath("static", name).read_bytes()
    return flask.Response(
        body,
        200,
        {"Content-Type": f"{STATIC[name]}; charset=utf-8", "Cache-Control": "max-age=300"},
    )
