"""admin over HTTP: authentication, roles, errors and security headers around every route.

Order of checks: route (404/405), the failed-login limit of the client
(429), credentials (401: ``X-API-KEY`` or ``Authorization: Bearer``, or the
console's session cookie with its CSRF token on non-GET requests), role
(403), then the view. Keys are never read from the query string (they would
end up in access logs). Every answer carries the security headers; no CORS
header is ever sent, so browsers keep other origins out.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

import flask
import orjson
import pg8000.native
import redis
from werkzeug.exceptions import MethodNotAllowed, NotFound

from functions.admin import routing
from functions.admin.errors import ApiError
from functions.admin.keys import ApiKey, KeyRing, principal
from functions.admin.limiter import FailureLimiter, client_of
from functions.admin.routing import Call, Route
from functions.admin.session import (
    CSRF_COOKIE,
    CSRF_FIELD,
    CSRF_HEADER,
    SESSION_COOKIE,
    csrf_ok,
    read_session,
)
from shared.context import Context, get_context

log = logging.getLogger(__name__)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
        " connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
}

_state: dict[str, object] = {}


def _views_loaded() -> None:
    """Import the view modules once: they fill the route table."""
    if "map" not in _state:
        from functions.admin import api_v1, api_v2, console, openapi, ops  # noqa: F401

        _state["map"] = routing.url_map()
        _state["by_endpoint"] = {r.endpoint: r for r in routing.ROUTES}
        _state["limiter"] = FailureLimiter()


def _keyring(ctx: Context) -> KeyRing:
    ring = _state.get("ring")
    if not isinstance(ring, KeyRing) or _state.get("ring_ctx") is not ctx:
        ring = KeyRing(ctx.secrets)
        _state["ring"], _state["ring_ctx"] = ring, ctx
    return ring


def json_response(
    body: object, status: int = 200, headers: dict[str, str] | None = None
) -> flask.Response:
    return flask.Response(
        orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS),
        status,
        headers,
        mimetype="application/json",
    )


def error_response(surface: str, err: ApiError) -> flask.Response:
    if surface == "v2":
        doc: dict[str, object] = {"status": err.status, "code": err.code, "message": err.message}
        if err.field:
            doc["field"] = err.field
        if err.problems:
            doc["problems"] = [{"field": f, "message": m} for f, m in err.problems]
        return json_response({"error": doc}, err.status, err.headers)
    if surface == "console" and err.status not in (401, 429):
        from functions.admin.console import error_page

        return error_page(err)
    body: dict[str, object] = {"error": err.message}
    if err.field:
        body["field"] = err.field
    if err.problems:
        body["problems"] = [{"field": f, "message": m} for f, m in err.problems]
    return json_response(body, err.status, err.headers)


def _presented_key(request: flask.Request) -> str | None:
    key = request.headers.get("X-API-KEY")
    if key:
        return key
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def _limited(call: Call) -> tuple[FailureLimiter, str]:
    """The limiter and this client; 429 while the client is over its failure budget."""
    limiter = _state["limiter"]
    assert isinstance(limiter, FailureLimiter)
    request = call.request
    client = client_of(request.remote_addr, request.headers.get("X-Forwarded-For"))
    wait = limiter.retry_after(client, call.ctx.dynamic.get("admin_auth_failures_per_minute"))
    if wait is not None:
        raise ApiError(
            429,
            f"too many failed logins from {client}; retry in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    return limiter, client


def check_key(call: Call, presented: str) -> ApiKey:
    """The key presented (a header, the login form); 401 and a counted failure if none matches."""
    limiter, client = _limited(call)
    key = _keyring(call.ctx).authenticate(presented)
    if key is None:
        limiter.failed(client)
        raise ApiError(401, "invalid API key", headers={"WWW-Authenticate": "ApiKey"})
    return key


def _authenticate(call: Call) -> None:
    """Fill ``call.principal`` (and ``call.session``) or raise 401 / 429."""
    request, ctx = call.request, call.ctx
    ring = _keyring(ctx)
    presented = _presented_key(request)
    if presented is not None:
        call.principal = principal(check_key(call, presented))
        return
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        limiter, client = _limited(call)
        session = read_session(ring, cookie)
        if session is None:
            limiter.failed(client)
            raise ApiError(401, "the session has expired or its key was removed: log in again")
        if request.method not in ("GET", "HEAD"):
            sent = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD)
            if not csrf_ok(session.csrf, request.cookies.get(CSRF_COOKIE), sent):
                raise ApiError(
                    403, "missing or wrong CSRF token: reload the page", field=CSRF_FIELD
                )
        call.principal, call.session = principal(session.key), session
        return
    if not ring.keys():
        raise ApiError(
            401,
            "no admin API key is configured (secret admin_api_keys): nobody can log in",
            headers={"WWW-Authenticate": "ApiKey"},
        )
    raise ApiError(
        401, "missing credentials: send X-API-KEY", headers={"WWW-Authenticate": "ApiKey"}
    )


def _dispatch(request: flask.Request) -> tuple[Route | None, flask.Response]:
    _views_loaded()
    adapter = _state["map"].bind("localhost")  # type: ignore[attr-defined]
    surface = "v2" if request.path.startswith("/api/v2") else "v1"
    try:
        endpoint, args = adapter.match(request.path, method=request.method)
    except MethodNotAllowed as exc:
        allowed = ", ".join(sorted(exc.valid_methods or []))
        err = ApiError(405, f"{request.method} is not allowed here", headers={"Allow": allowed})
        return None, error_response(surface, err)
    except NotFound:
        return None, error_response(surface, ApiError(404, f"no route for {request.path}"))
    found: Route = _state["by_endpoint"][endpoint]  # type: ignore[index]
    call = Call(request, found, args, get_context())
    try:
        if found.role is not None:
            try:
                _authenticate(call)
            except ApiError as err:
                if found.surface == "console" and err.status == 401 and request.method == "GET":
                    target = quote(request.full_path.rstrip("?"), safe="/?=&")
                    redirect = flask.Response(b"", 303, {"Location": f"/login?next={target}"})
                    return found, redirect
                raise
            assert call.principal is not None
            if not call.principal.can(found.role):
                raise ApiError(
                    403,
                    f"this needs the {found.role} role; your key has {call.principal.role}",
                )
        return found, found.view(call)
    except ApiError as err:
        return found, error_response(found.surface, err)
    except (redis.RedisError, pg8000.native.InterfaceError, OSError) as exc:
        call.ctx.drop_pg()
        log.warning("admin: %s %s: server unavailable: %s", request.method, request.path, exc)
        down = ApiError(
            503, f"a server is unavailable: {type(exc).__name__}", headers={"Retry-After": "1"}
        )
        return found, error_response(found.surface, down)
    except pg8000.native.DatabaseError as exc:
        call.ctx.drop_pg()
        log.error("admin: %s %s: database error: %s", request.method, request.path, exc)
        refused = ApiError(503, "the database refused the request", headers={"Retry-After": "1"})
        return found, error_response(found.surface, refused)


def handle(request: flask.Request) -> flask.Response:
    """The whole function: one request in, one response out, security headers always."""
    _, response = _dispatch(request)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
