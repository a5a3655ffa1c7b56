"""The 429 of a throttled address, answered before Flask sees the request.

A bad-key flood must cost the server almost nothing. Through Flask and
functions-framework a 429 costs about as much as a 401 (request objects,
routing, a trace span, the execution-id middleware); this WSGI middleware,
the outermost layer of the ingest app, answers a POST to an ingest route
from a throttled address straight from the WSGI environ: one dictionary
lookup, three counters, a few bytes. Everything else goes on to the app,
which keeps its own check (the first request of a process builds the
``Ingest`` that owns the limiter, and that one passes through).

Gunicorn has still read and parsed each request this gate answers. A direct
client therefore meets it once per connection (the worker closes the
connection after the answer) and is refused at accept afterwards
(``connection_gate``); a client behind trusted proxies meets it on every
request, since only the request's X-Forwarded-For names it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from functions.ingest import app as ingest_app
from functions.ingest.client_address import client_address
from functions.ingest.contract import API_VERSION, DEPRECATED_ROUTES, DEPRECATED_SUNSET
from shared.metrics import AUTH_THROTTLED, EVENTS_REJECTED, INGEST_REQUESTS, INGEST_SECONDS

Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

POST_ROUTES = frozenset({"/", *ingest_app.LEGACY_PATHS, *ingest_app.ALERTMANAGER_PATHS})
MESSAGE = "too many failed authentications from this address; retry later"


def _correlation_id(environ: dict[str, Any]) -> str:
    given = environ.get("HTTP_X_CORRELATION_ID", "")
    if given and len(given) <= 128 and given.isprintable():
        return str(given)
    return str(uuid.uuid4())


def throttle_gate(app: Wsgi) -> Wsgi:
    """Wrap the ingest app's WSGI callable."""

    def gate(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        ingest = ingest_app._ingest
        path = environ.get("PATH_INFO", "")
        if ingest is None or environ.get("REQUEST_METHOD") != "POST" or path not in POST_ROUTES:
            return app(environ, start_response)
        started = time.perf_counter()
        client = client_address(
            environ.get("REMOTE_ADDR"), environ.get("HTTP_X_FORWARDED_FOR"), ingest.proxies
        )
        wait = ingest.throttle.retry_after(client)
        if wait is None:
            return app(environ, start_response)
        body = orjson.dumps({"error": MESSAGE, "retry_after_seconds": wait})
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("Retry-After", str(wait)),
            ("X-MUTT-API-Version", API_VERSION),
            ("X-Correlation-ID", _correlation_id(environ)),
        ]
        if path in DEPRECATED_ROUTES:
            headers += [
                ("Deprecation", "true"),
                ("Sunset", DEPRECATED_SUNSET),
                ("Link", '</api/v2/ingest>; rel="successor-version"'),
            ]
        start_response("429 Too Many Requests", headers)
        route = ingest_app.route_label(path)
        AUTH_THROTTLED.inc()
        EVENTS_REJECTED.labels("auth_throttled").inc()
        INGEST_REQUESTS.labels(route, "429").inc()
        INGEST_SECONDS.labels(route).observe(time.perf_counter() - started)
        return [body]

    return gate
